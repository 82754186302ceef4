"""A garage owner in Debian's Chromium, on a desktop and on a 375 px phone:
logs in with the keyboard, sees the balance, and watches an invoice the
accountant records as paid leave the page without reloading it.

The portal runs on a real HTTP server in a thread: on SQLite the database
must be a file (``TRYTOND_DATABASE__PATH=/tmp/db DB_NAME=test_portal``). On
SQLite the page polls; on PostgreSQL it long-polls Tryton's bus.
"""
import datetime as dt
import re

import pytest
from proteus import Model

from trytond import backend
from trytond import config as trytond_config

from conftest import YEAR, make_customer, make_invoice, pay
from portal_support import (  # noqa: F401
    DESKTOP, PASSWORD, PHONE, chromium, make_portal_user, portal_server,
    tryton_portal)

INVOICE_DATE = dt.date(YEAR, 3, 2)
TIMEOUT = 20_000  # ms: how long the page may take to follow the ledger


def forget_read_values():
    for read in (trytond_config.get, trytond_config.getint):
        read.cache_clear()


@pytest.fixture
def quick_updates():
    """The page polls every second on SQLite; on PostgreSQL the bus
    listener is stopped after the test so that its connection does not
    keep the database from being dropped"""
    from trytond.bus import LongPollingBus
    if not trytond_config.has_section('dunning_portal'):
        trytond_config.add_section('dunning_portal')
    trytond_config.set('dunning_portal', 'poll_interval', '1')
    select_timeout = trytond_config.get('bus', 'select_timeout')
    trytond_config.set('bus', 'select_timeout', '1')
    # A page rendered by an earlier test may have cached the defaults.
    forget_read_values()
    try:
        yield
    finally:
        trytond_config.remove_section('dunning_portal')
        trytond_config.set('bus', 'select_timeout', select_timeout)
        forget_read_values()
        listeners = []
        for queue in list(LongPollingBus._queues.values()):
            queue['timeout'] = 0
            listeners.append(queue.get('listener'))
        for listener in filter(None, listeners):
            listener.join()


def tab_to(page, element_id, limit=10):
    "Press Tab until the element has the focus, as a keyboard user does"
    for _ in range(limit):
        page.keyboard.press('Tab')
        if page.evaluate('document.activeElement.id') == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with Tab")


@pytest.mark.parametrize('viewport', [DESKTOP, PHONE],
    ids=['desktop', 'phone'])
def test_balance_follows_an_accountant_payment(
        tryton_portal, quick_updates, portal_server, chromium, viewport):
    world = tryton_portal
    party = make_customer("Garage Lenoir", 'lenoir@garage.example')
    make_portal_user(party, 'lenoir@garage.example')
    brakes = make_invoice(world, party, '1250.00', INVOICE_DATE)
    filters = make_invoice(world, party, '80.50', INVOICE_DATE)

    page = chromium.new_page(viewport=viewport)
    page.goto(portal_server + 'login')
    page.keyboard.press('Tab')
    assert page.evaluate('document.activeElement.textContent') == (
        "Skip to content")
    tab_to(page, 'email')
    page.keyboard.type('lenoir@garage.example')
    page.keyboard.press('Tab')
    assert page.evaluate('document.activeElement.id') == 'password'
    page.keyboard.type(PASSWORD)
    page.keyboard.press('Enter')
    page.wait_for_url(portal_server)

    assert page.get_attribute('html', 'lang') == 'en'
    live = page.locator('#balance')
    assert live.get_attribute('aria-live') == 'polite'
    assert live.get_attribute('data-live') == (
        'bus' if backend.name == 'postgresql' else 'poll')
    for invoice, amount in [(brakes, '$1,250.00'), (filters, '$80.50')]:
        row = page.locator(f'tr[data-invoice="{invoice.id}"]')
        assert row.get_attribute('data-status') == 'overdue'
        assert amount in row.inner_text()
        assert "Overdue" in row.inner_text()
    assert page.locator('[data-total]').inner_text() == '$1,330.50'
    assert page.evaluate(
        'document.documentElement.scrollWidth <= window.innerWidth')
    if viewport == PHONE:
        assert page.evaluate('document.documentElement.scrollWidth') <= 375
        assert page.locator('table.stack thead').evaluate(
            'e => e.getBoundingClientRect().height') <= 1, (
            "on a phone each invoice is a card, its labels beside values")
    page.get_by_role("link", name="Pay", exact=True).wait_for()

    page.evaluate('window.stillTheSamePage = true')
    pay(world, brakes, dt.date.today())
    page.locator(f'tr[data-invoice="{brakes.id}"]').wait_for(
        state='detached', timeout=TIMEOUT)
    assert page.locator('[data-total]').inner_text() == '$80.50'
    assert page.evaluate('window.stillTheSamePage'), "updated, not reloaded"

    pay(world, filters, dt.date.today())
    page.locator('[data-paid-up]').wait_for(timeout=TIMEOUT)
    assert page.evaluate('window.stillTheSamePage')

    page.get_by_role('link', name="Paid invoices").click()
    page.wait_for_url(re.compile(r'/invoices/paid$'))
    assert page.locator('tbody tr').count() == 2
    assert page.evaluate(
        'document.documentElement.scrollWidth <= window.innerWidth')
    Invoice = Model.get('account.invoice')
    assert {i.state for i in Invoice.find([('party', '=', party.id)])} == {
        'paid'}


@pytest.mark.parametrize('viewport', [DESKTOP, PHONE],
    ids=['desktop', 'phone'])
def test_french_customer_reads_french(
        tryton_portal, quick_updates, portal_server, chromium, viewport):
    """A French garage owner's browser asks for French: the login page, the
    balance and its notice are in French, the notice stays until the
    customer dismisses it. A screenshot is kept under var/ for a person
    to look at."""
    from conftest import run_dunning
    world = tryton_portal
    Lang = Model.get('ir.lang')
    Lang.click(Lang.find([('code', '=', 'fr')]), 'load_translations')
    party = make_customer("Garage Dupont", 'dupont@garage.example',
        lang='fr')
    make_portal_user(party, 'dupont@garage.example')
    make_invoice(world, party, '12345.67', INVOICE_DATE)
    run_dunning(dt.date(YEAR, 4, 11))

    context = chromium.new_context(viewport=viewport, locale='fr-FR')
    page = context.new_page()
    page.goto(portal_server + 'login')
    assert page.get_attribute('html', 'lang') == 'fr'
    page.get_by_label("E-mail").fill('dupont@garage.example')
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role('button', name="Se connecter").click()
    page.wait_for_url(portal_server)
    assert page.get_attribute('html', 'lang') == 'fr'
    assert "Votre compte" in page.locator('h1').inner_text()
    assert re.fullmatch(r'12\s345,67\s\$',
        page.locator('[data-total]').inner_text())
    assert page.evaluate(
        'document.documentElement.scrollWidth <= window.innerWidth')
    notice = page.locator('[data-notice]')
    assert notice.count() == 1
    page.screenshot(path=screenshot(f'portal-fr-{viewport["width"]}.png'),
        full_page=True)

    page.reload()
    assert page.locator('[data-notice]').count() == 1, "stays after a view"
    page.get_by_role('button', name=re.compile("^Masquer")).click()
    page.locator('[data-notice]').wait_for(state='detached')
    page.reload()
    assert page.locator('[data-notice]').count() == 0, "gone once dismissed"
    context.close()


def screenshot(name):
    from pathlib import Path
    folder = Path(__file__).parent.parent / 'var' / 'screenshots'
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / name)
