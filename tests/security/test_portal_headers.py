"""Finding 6 of issue 15: every page and PDF of the portal answers with the
headers that keep a customer's accounts out of caches, frames of other
sites and content sniffing, and a Content-Security-Policy that allows no
inline script but lets the card page load Stripe.js and its card form.

On SQLite the database must be a file: the portal runs in a server thread.
"""
import datetime as dt
import re

import stripe

from conftest import YEAR, make_invoice, pay
from portal_support import (  # noqa: F401
    make_portal_user, portal_server, tryton_portal)
from test_stripe import Customer, card, customer, local_stripe  # noqa: F401

INVOICE_DATE = dt.date(YEAR, 3, 2)
INLINE_SCRIPT = re.compile(r'<script(?![^>]*\ssrc=)[^>]*>', re.I)


def directives(policy):
    "The Content-Security-Policy's sources by directive"
    return {name: sources for name, *sources in (
            d.split() for d in policy.split(';') if d.strip())}


def test_pages_and_pdfs_have_security_headers(card):
    world = card.world
    party = customer(card, "Garage Martin", 'compta@garage-martin.example')
    invoice = make_invoice(world, party, '300.00', INVOICE_DATE)
    pay(world, make_invoice(world, party, '120.00', INVOICE_DATE),
        INVOICE_DATE + dt.timedelta(days=20))
    browser = Customer(card.portal, 'compta@garage-martin.example')
    payments = browser.get('payments')
    receipt, = re.findall(r'payments/\d+/receipt\.pdf', payments.text)
    card_page = browser.pay([invoice])
    assert card_page.url.endswith('/card')
    card_path = card_page.url[len(card.portal):]
    pages = ['', 'invoices/paid', 'payments', 'preferences', 'plans',
        'plans/new', 'pay', f'invoices/{invoice.id}/dispute', card_path,
        'balance.fragment', 'balance.json']
    pdfs = [f'invoices/{invoice.id}.pdf', receipt,
        f'statement.pdf?from={YEAR}-01-01&to={YEAR}-12-31']
    for path in pages + pdfs:
        response = browser.get(path, allow_redirects=False)
        assert response.status_code == 200, path
        headers = response.headers
        policy = directives(headers.get('Content-Security-Policy', ''))
        assert policy.get('frame-ancestors') == ["'none'"], path
        assert policy.get('default-src') == ["'self'"], path
        assert "'unsafe-inline'" not in policy.get('script-src', []), path
        assert headers.get('X-Frame-Options') == 'DENY', path
        assert headers.get('X-Content-Type-Options') == 'nosniff', path
        assert headers.get('Referrer-Policy') in {
            'no-referrer', 'same-origin'}, path
        assert headers.get('Cache-Control') == 'no-store', path
        if path in pdfs:
            assert headers['Content-Type'] == 'application/pdf', path
        elif headers['Content-Type'].startswith('text/html'):
            assert not INLINE_SCRIPT.findall(response.text), (
                f"{path}: an inline script the policy blocks")

    policy = directives(browser.get(card_path).headers[
            'Content-Security-Policy'])
    assert 'https://js.stripe.com' in policy['script-src']
    assert 'https://js.stripe.com' in policy['frame-src']
    assert stripe.api_base in policy['connect-src'], (
        "the card form calls Stripe's API")
    assert 'src="https://js.stripe.com/v3/"' in card_page.text
