"""Fixtures of the portal tests: a database with dunning_portal, a real HTTP
server serving trytond's WSGI application, customers with portal logins and
Debian's Chromium driven by Playwright."""
import threading

import pytest
from werkzeug.serving import make_server

from trytond import config as trytond_config

from conftest import free_port, world

PASSWORD = 'Garage-2026-portal'
CHROMIUM = '/usr/bin/chromium'
# Without the background-networking flags Chromium keeps trying Google's
# hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync']
DESKTOP = {'width': 1280, 'height': 900}
PHONE = {'width': 375, 'height': 740}


@pytest.fixture
def tryton_portal():
    """A fresh database with dunning_portal and the company's world"""
    yield from world(['dunning_advanced', 'dunning_portal'])


def make_portal_user(party, email, password=PASSWORD):
    "A web user of the portal speaking for party"
    from proteus import Model
    WebUser = Model.get('web.user')
    user = WebUser(email=email, party=party)
    user.password = password
    user.save()
    return user


@pytest.fixture
def portal_server(tryton_portal):
    """trytond's WSGI application on a free port, in a thread; yields the
    portal's base URL, ending with a slash"""
    from trytond.wsgi import app
    config = tryton_portal['config']
    # Served over plain http: a browser would not send back Secure cookies.
    if not trytond_config.has_section('dunning_portal'):
        trytond_config.add_section('dunning_portal')
    trytond_config.set('dunning_portal', 'secure_cookie', 'False')
    server = make_server('127.0.0.1', free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.port}/{config.database_name}/portal/'
    finally:
        server.shutdown()
        thread.join()
        if trytond_config.has_section('dunning_portal'):
            trytond_config.set('dunning_portal', 'secure_cookie', 'True')


@pytest.fixture
def chromium():
    "Debian's headless Chromium, driven by Playwright"
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
