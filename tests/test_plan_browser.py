"""A garage proposes a payment plan in Debian's Chromium, on a desktop and
on a 375 px phone: it sees the schedule, accepts it and finds its invoices
"in a plan".

The portal runs on a real HTTP server in a thread: on SQLite the database
must be a file (``TRYTOND_DATABASE__PATH=/tmp/db DB_NAME=test_plans``).
"""
import datetime as dt
import re

import pytest
from proteus import Model

from conftest import make_customer, make_invoice
from portal_support import (  # noqa: F401
    DESKTOP, PASSWORD, PHONE, chromium, make_portal_user, portal_server,
    tryton_portal)
# The balance page follows payments on PostgreSQL's bus: its listener must
# stop before the database is dropped.
from test_portal_browser import quick_updates  # noqa: F401

TODAY = dt.date.today()


@pytest.mark.parametrize('viewport', [DESKTOP, PHONE],
    ids=['desktop', 'phone'])
def test_propose_and_accept_a_three_instalment_plan(
        tryton_portal, quick_updates, portal_server, chromium, viewport):
    world = tryton_portal
    world['procedure'].plan_allowed = True
    world['procedure'].save()
    party = make_customer("Garage Roux", 'roux@garage.example')
    make_portal_user(party, 'roux@garage.example')
    older = make_invoice(world, party, '450.00', TODAY - dt.timedelta(
            days=40))
    newer = make_invoice(world, party, '150.01', TODAY - dt.timedelta(
            days=35))

    page = chromium.new_page(viewport=viewport)
    page.goto(portal_server + 'login')
    page.fill('#email', 'roux@garage.example')
    page.fill('#password', PASSWORD)
    page.click('button:has-text("Log in")')
    page.get_by_role('link', name="Propose a plan").click()
    page.wait_for_url(re.compile(r'/plans/new'))
    assert page.is_checked(f'#invoice-{older.id}')
    assert page.is_checked(f'#invoice-{newer.id}')
    page.select_option('#count', '3')
    page.select_option('#frequency', 'month')
    page.get_by_role('button', name="See the schedule").click()

    schedule = page.locator('#schedule')
    schedule.wait_for()
    rows = schedule.locator('tbody tr')
    assert rows.count() == 3
    assert [rows.nth(i).locator('[data-amount]').get_attribute('data-amount')
        for i in range(3)] == ['200.00', '200.00', '200.01']
    assert schedule.locator('[data-total]').get_attribute(
        'data-total') == '600.01'
    assert "(today)" in rows.nth(0).inner_text()
    assert page.evaluate(
        'document.documentElement.scrollWidth <= window.innerWidth'), (
        "nothing wider than the screen")

    page.get_by_role('button', name="Accept this plan").click()
    page.wait_for_url(re.compile(r'/plans/\d+$'))
    assert page.locator('#plan-state').get_attribute('data-state') == (
        'active')
    assert page.locator('[data-paid="no"]').count() == 3
    assert page.evaluate(
        'document.documentElement.scrollWidth <= window.innerWidth')

    page.get_by_role('link', name="Back to your account").click()
    for invoice in (older, newer):
        row = page.locator(f'tr[data-invoice="{invoice.id}"]')
        assert row.get_attribute('data-status') == 'plan'
        assert "In a plan" in row.inner_text()
    Plan = Model.get('account.dunning.plan')
    plan, = Plan.find([('party', '=', party.id)])
    assert plan.state == 'active' and plan.total == older.total_amount + (
        newer.total_amount)
