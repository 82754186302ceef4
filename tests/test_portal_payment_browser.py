"""A garage owner pays two invoices by card in Debian's Chromium, on a
desktop and on a 375 px phone, against the local Stripe: Stripe.js comes
from it through the browser's request routing, no request leaves the
machine. The open balance page in another tab follows without reloading,
and the ledger has both invoices paid and reconciled.

On SQLite the database must be a file (``TRYTOND_DATABASE__PATH=/tmp/db
DB_NAME=test_portal_payment``): the portal runs in a thread of its own.
"""
import datetime as dt
import re

import pytest
from proteus import Model

from conftest import YEAR, make_invoice
from portal_support import (  # noqa: F401
    DESKTOP, PASSWORD, PHONE, chromium, portal_server, tryton_portal)
from test_portal_browser import quick_updates  # noqa: F401
from test_stripe import (  # noqa: F401
    DECLINED, VISA, card, clearing_moves, customer, local_stripe)

INVOICE_DATE = dt.date(YEAR, 3, 2)
TIMEOUT = 20_000  # ms: how long the pages may take to follow Stripe


def fits(page):
    return page.evaluate(
        'document.documentElement.scrollWidth <= window.innerWidth')


def give_card(page, number):
    page.get_by_label('Card number').fill(number)
    page.get_by_label('Expiry (MM/YY)').fill('12/34')
    page.get_by_label('CVC').fill('123')
    page.get_by_role('button', name=re.compile(r'^Pay \$')).click()


@pytest.mark.parametrize('viewport', [DESKTOP, PHONE],
    ids=['desktop', 'phone'])
def test_pay_two_invoices_by_card(
        card, quick_updates, chromium, mailbox, viewport):
    world = card.world
    party = customer(card, "Garage Durand", 'durand@garage.example')
    brakes = make_invoice(world, party, '300.00', INVOICE_DATE)
    filters = make_invoice(world, party, '200.00', INVOICE_DATE)
    tyres = make_invoice(world, party, '80.00', INVOICE_DATE)

    context = chromium.new_context(viewport=viewport)
    stripe_hosts = []

    def stripe_js(route):
        stripe_hosts.append(route.request.url)
        route.fulfill(body=card.stripe.stripe_js,
            content_type='application/javascript')
    context.route(re.compile(r'^https://js\.stripe\.com/'), stripe_js)
    balance = context.new_page()
    balance.goto(card.portal + 'login')
    balance.get_by_label('Email').fill('durand@garage.example')
    balance.get_by_label('Password').fill(PASSWORD)
    balance.get_by_label('Password').press('Enter')
    balance.wait_for_url(card.portal)
    balance.evaluate('window.stillTheSamePage = true')

    page = context.new_page()
    page.goto(card.portal + f'pay?invoice={brakes.id}&invoice={filters.id}')
    assert page.get_by_label(re.compile(r'\$300\.00')).is_checked()
    assert page.get_by_label(re.compile(r'\$200\.00')).is_checked()
    assert not page.get_by_label(re.compile(r'\$80\.00')).is_checked()
    assert fits(page)
    page.get_by_role('button', name="Pay the ticked invoices").click()
    page.wait_for_url(re.compile(r'/pay/\d+/card$'))
    assert page.locator('[data-amount]').inner_text() == '$500.00'
    assert fits(page)

    give_card(page, DECLINED)
    error = page.get_by_role('alert')
    error.wait_for()
    assert error.inner_text() == "Your card was declined."
    give_card(page, VISA)
    page.wait_for_url(re.compile(r'/pay/\d+/done\?'))
    page.get_by_role('heading',
        name="Thank you, your payment is recorded").wait_for(timeout=TIMEOUT)
    assert page.get_by_role('link', name=re.compile('^Receipt')).count() == 2
    assert fits(page)
    assert stripe_hosts == ['https://js.stripe.com/v3/']

    for invoice in [brakes, filters]:
        balance.locator(f'tr[data-invoice="{invoice.id}"]').wait_for(
            state='detached', timeout=TIMEOUT)
    assert balance.locator('[data-total]').inner_text() == '$80.00'
    assert balance.evaluate('window.stillTheSamePage'), "updated in place"
    context.close()

    Payment = Model.get('account.payment')
    payment, = Payment.find([])
    assert payment.state == 'succeeded'
    for invoice in [brakes, filters]:
        invoice.reload()
        assert invoice.state == 'paid'
        assert all(l.reconciliation for l in invoice.lines_to_pay)
    tyres.reload()
    assert tyres.state == 'posted'
    move, = clearing_moves(payment)
    assert move.state == 'posted'
    assert sorted(l.credit for l in move.lines if l.credit) == [
        200, 300]
