"""A garage owner in Debian's Chromium, on a desktop and on a 375 px phone:
opens the survey link of a real reminder email, answers with the keyboard,
then logs in and downloads the statement of account as a PDF.

The portal runs on a real HTTP server in a thread: on SQLite the database
must be a file (``TRYTOND_DATABASE__PATH=/tmp/db DB_NAME=test_survey``).
"""
import datetime as dt
import re
from pathlib import Path

import pytest
from proteus import Model

from conftest import YEAR, body_of, make_customer, make_invoice, run_dunning
from portal_support import (  # noqa: F401
    DESKTOP, PASSWORD, PHONE, chromium, make_portal_user, portal_server,
    tryton_portal)
# The balance page listens to Tryton's bus on PostgreSQL: the fixture stops
# the listener, whose connection would keep the database from being dropped.
from test_portal_browser import quick_updates  # noqa: F401

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)


def focus(page):
    return page.evaluate('document.activeElement.id')


def tab_to(page, element_id, limit=15):
    "Press Tab until the element has the focus, as a keyboard user does"
    for _ in range(limit):
        page.keyboard.press('Tab')
        if focus(page) == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with Tab")


@pytest.mark.parametrize('viewport', [DESKTOP, PHONE],
    ids=['desktop', 'phone'])
def test_survey_and_statement(tryton_portal, quick_updates,  # noqa: F811
        portal_server, chromium, mailbox, viewport):
    world = tryton_portal
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.dunning_portal_url = portal_server.rstrip('/').rsplit(
        '/', 1)[0]
    configuration.save()
    party = make_customer("Garage Lenoir", 'lenoir@garage.example')
    make_portal_user(party, 'lenoir@garage.example')
    make_invoice(world, party, '1250.00', INVOICE_DATE)
    run_dunning(DUE)
    email, = mailbox.messages
    link = re.search(
        r"Tell us how easy it was: (" + re.escape(portal_server)
        + r"survey/\S+)", body_of(email)).group(1)

    context = chromium.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.goto(link)
    assert page.locator('h1').inner_text() == (
        "Two questions, thirty seconds")
    assert "cannot be changed" in page.locator('main').inner_text()
    assert page.evaluate(
        'document.documentElement.scrollWidth <= window.innerWidth')
    tab_to(page, 'score-1')
    for _ in range(3):
        page.keyboard.press('ArrowRight')
    assert focus(page) == 'score-4'
    assert page.locator('#score-4').is_checked()
    page.keyboard.press('Tab')
    assert focus(page) == 'comment'
    page.keyboard.type("A payment link in the SMS")
    page.keyboard.press('Tab')
    assert page.evaluate('document.activeElement.textContent') == (
        "Send my answer")
    page.keyboard.press('Enter')
    page.get_by_role('heading', name="Thank you").wait_for()
    assert "Your answer is saved: 4 out of 5, with your suggestion" in (
        page.locator('main').inner_text())

    Answer = Model.get('account.dunning.survey.answer')
    answer, = Answer.find([])
    assert (answer.party, answer.score, answer.comment, answer.channel) == (
        party, 4, "A payment link in the SMS", 'email')

    page.goto(portal_server + 'login')
    tab_to(page, 'email')
    page.keyboard.type('lenoir@garage.example')
    page.keyboard.press('Tab')
    page.keyboard.type(PASSWORD)
    page.keyboard.press('Enter')
    page.wait_for_url(portal_server)
    page.fill('#statement-from', f'{YEAR}-03-01')
    page.fill('#statement-to', f'{YEAR}-03-31')
    with page.expect_download() as download:
        page.get_by_role(
            'button', name="Download the statement (PDF)").click()
    download = download.value
    assert download.suggested_filename == (
        f'statement-{YEAR}-03-01-{YEAR}-03-31.pdf')
    assert Path(download.path()).read_bytes()[:5] == b'%PDF-'
    context.close()
