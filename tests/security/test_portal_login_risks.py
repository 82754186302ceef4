"""Finding 7 of issue 15, the portal's risks to close: the session cookie
stays Secure behind a TLS proxy unless the configuration says otherwise;
a new card amount leaves one PaymentIntent open, not two.

The card payment test runs the portal in a server thread: on SQLite the
database must be a file."""
import datetime as dt
from decimal import Decimal

from proteus import Model
from werkzeug.test import Client

from conftest import YEAR, make_invoice
from portal_support import (  # noqa: F401
    make_portal_user, portal_server, tryton_portal)
from test_portal import (  # noqa: F401
    client, garages, log_in, portal_config, root)
from test_stripe import Customer, card, customer, local_stripe  # noqa: F401

INVOICE_DATE = dt.date(YEAR, 3, 2)


def set_cookies(response):
    "The attributes of each cookie the response sets, by cookie name"
    cookies = {}
    for header in response.headers.getlist('Set-Cookie'):
        name, _, rest = header.partition('=')
        cookies[name] = {a.strip().split('=')[0].lower()
            for a in rest.split(';')[1:]}
    return cookies


def test_session_cookie_secure_behind_a_tls_proxy(
        garages, client, root, portal_config):
    "A TLS proxy speaks plain http to trytond: the cookie stays Secure"
    from trytond.wsgi import app
    done = log_in(client, root, 'lenoir@garage.example')
    assert done.status_code == 303
    cookies = set_cookies(done)
    assert 'secure' in cookies['dunning_portal_session'], (
        "Secure whatever the scheme trytond sees")
    assert 'httponly' in cookies['dunning_portal_session']
    assert 'secure' in cookies['dunning_portal_csrf']

    portal_config('secure_cookie', False)
    done = log_in(Client(app), root, 'lenoir@garage.example')
    assert done.status_code == 303
    assert 'secure' not in set_cookies(done)['dunning_portal_session'], (
        "a portal on http://localhost opts out by its configuration")


def test_new_card_amount_leaves_one_intent_open(card):
    world = card.world
    party = customer(card, "Garage Martin", 'compta@garage-martin.example')
    brakes = make_invoice(world, party, '300.00', INVOICE_DATE)
    browser = Customer(card.portal, 'compta@garage-martin.example')
    first = browser.pay([brakes], '100')
    again = browser.pay([brakes], '100')
    assert again.url == first.url, "the same amount reuses its payment"
    second = browser.pay([brakes], '150')
    assert second.url.endswith('/card') and second.url != first.url

    intents = card.stripe.payment_intents.values()
    payable = [i['amount'] for i in intents if i['status'] != 'canceled']
    assert payable == [15000], (
        "only the last amount can be paid: the first intent is cancelled")
    Payment = Model.get('account.payment')
    states = {p.amount: p.state for p in Payment.find([])}
    assert states == {Decimal('100.00'): 'failed',
        Decimal('150.00'): 'processing'}
    assert browser.get(first.url[len(card.portal):]).url.endswith('/done'), (
        "the first card page no longer offers the card form")
