"""Finding 7 of issue 15, the portal's risks to close: the session cookie
stays Secure behind a TLS proxy unless the configuration says otherwise;
a new card amount leaves one PaymentIntent open, not two; the work of a
login tells nothing of the address; failed logins are limited per address
and per client without holding a server thread, and never keep customers
from the links emailed to them.

The card payment test runs the portal in a server thread: on SQLite the
database must be a file."""
import datetime as dt
import time
from decimal import Decimal

import pytest
from proteus import Model
from werkzeug.test import Client

from trytond import config as trytond_config

from conftest import YEAR, make_customer, make_invoice, signed
from portal_support import (  # noqa: F401
    PASSWORD, make_portal_user, portal_server, tryton_portal)
from test_portal import (  # noqa: F401
    CSRF, client, csrf, garages, log_in, portal_config, portal_on_localhost,
    post, reset_link, root, text)
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


class From(Client):
    "A browser at address"

    def __init__(self, application, address):
        super().__init__(application)
        self.address = address

    def open(self, *args, **kwargs):
        kwargs.setdefault('environ_base', {'REMOTE_ADDR': self.address})
        return super().open(*args, **kwargs)


def login(client, root, email, password='Not-the-password-1'):
    "The portal's answer to a login"
    return client.post(root + 'login', data={
            'csrf_token': csrf(client, root + 'login'), 'email': email,
            'password': password})


@pytest.fixture
def hashing(monkeypatch):
    """[(operation, scheme and cost)] of the password hashing done, in
    order: what decides how long a login takes"""
    from trytond.res.user import PASSWORD_HASH
    done = []
    verify, hash_ = PASSWORD_HASH.verify_and_update, PASSWORD_HASH.hash

    def spied_verify(password, stored):
        done.append(('verify', stored.rsplit('$', 2)[0]))
        return verify(password, stored)

    def spied_hash(password, *args, **kwargs):
        done.append(('hash', None))
        return hash_(password, *args, **kwargs)
    monkeypatch.setattr(PASSWORD_HASH, 'verify_and_update', spied_verify)
    monkeypatch.setattr(PASSWORD_HASH, 'hash', spied_hash)
    return done


@pytest.fixture
def sleeps(monkeypatch):
    "The seconds of every time.sleep of the server's code"
    slept = []
    monkeypatch.setattr(time, 'sleep', slept.append)
    return slept


def test_login_work_tells_nothing_of_the_address(
        tryton_portal, client, root, hashing, sleeps):
    """An attacker timing wrong logins cannot tell known addresses apart:
    each costs one check of the same kind of hash, nothing more"""
    email = 'garage@garage.example'
    make_portal_user(make_customer("Garage", email), email)
    # The first unknown address of the process makes the stand-in hash.
    login(client, root, 'warm-up@garage.example')
    work = {}
    for kind, address in [
            ('known', email), ('unknown', 'nobody@garage.example')]:
        hashing.clear()
        assert login(client, root, address).status_code == 401
        work[kind] = list(hashing)
    assert work['unknown'] == work['known'], work
    assert [operation for operation, _ in work['known']] == ['verify']
    assert not sleeps, "no sleep in the request thread"


@pytest.fixture
def few_attempts():
    "[session] max_attempt_ip_network at 8 for the test"
    previous = trytond_config.get('session', 'max_attempt_ip_network')
    trytond_config.set('session', 'max_attempt_ip_network', '8')
    try:
        yield
    finally:
        if previous is None:
            trytond_config._config.remove_option(
                'session', 'max_attempt_ip_network')
            trytond_config.getint.cache_clear()
        else:
            trytond_config.set('session', 'max_attempt_ip_network', previous)


def test_failed_logins_limited_without_sleeping(garages, root, mailbox,
        few_attempts, sleeps):
    from trytond.modules.dunning_portal.web_user import sign_link
    from trytond.wsgi import app
    portal_on_localhost(garages['world'])
    attacker = From(app, '198.51.100.9')
    for attempt in range(5):
        response = login(attacker, root, 'lenoir@garage.example')
        assert response.status_code == 401, attempt
    locked = login(attacker, root, 'lenoir@garage.example')
    assert locked.status_code == 429
    assert not sleeps, "no sleep in the request thread"
    assert 0 < int(locked.headers['Retry-After']) <= 5 * 60
    assert 'Too many attempts' in text(locked)

    customer = From(app, '203.0.113.7')
    assert login(customer, root, 'lenoir@garage.example',
        PASSWORD).status_code == 429, "the account is limited"
    token = signed(garages['world']['config'], sign_link,
        garages['lenoir'].id, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    page = customer.get(root + 'login/' + token)
    opened = customer.post(root + 'login/' + token,
        data={'csrf_token': CSRF.search(text(page)).group(1)})
    assert opened.status_code == 303, "the reminder's link still opens"
    assert customer.get(root).status_code == 200

    reset = From(app, '203.0.113.7')
    post(reset, root, 'reset', {'email': 'lenoir@garage.example'})
    link = reset_link(mailbox.messages[-1])
    path, _, query = link.partition('?')
    done = reset.post(path, data={
            'csrf_token': csrf(reset, link),
            'email': 'lenoir@garage.example',
            'password': 'Nouveau-garage-2026',
            'confirm': 'Nouveau-garage-2026'})
    assert done.status_code == 303, "the reset link still works"
    assert not sleeps, "no sleep before the reset either"
    assert login(reset, root, 'lenoir@garage.example',
        'Nouveau-garage-2026').status_code == 303, (
        "the address proved by the reset logs in again")

    # The reset forgot the failures of its address: 8 more from elsewhere.
    for number in range(8):
        assert login(attacker, root,
            f'other{number}@garage.example').status_code == 401
    assert login(attacker, root, 'martin@garage.example',
        PASSWORD).status_code == 429, "the attacker's address is limited"
    other = From(app, '192.0.2.44')
    assert login(other, root, 'martin@garage.example',
        PASSWORD).status_code == 303, "not the other addresses"
