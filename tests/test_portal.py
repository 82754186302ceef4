"""The customer portal over HTTP: logging in and out, sessions, password
reset, the one-time links of reminders, CSRF, other customers' records,
disputes, contact preferences and portal notices."""
import datetime as dt
import re
from decimal import Decimal
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from proteus import Model
from werkzeug.test import Client

from trytond import config as trytond_config

from conftest import (
    YEAR, body_of, make_customer, make_invoice, pay, run_dunning)
from portal_support import PASSWORD, make_portal_user, tryton_portal  # noqa

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)  # runs on weekdays: weekends wait for office hours
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def day(offset):
    return DUE + dt.timedelta(days=offset)


@pytest.fixture
def client():
    from trytond.wsgi import app
    return Client(app)


@pytest.fixture
def root(tryton_portal):
    return f"/{quote(tryton_portal['config'].database_name, safe=':')}/portal/"


def text(response):
    return response.get_data(as_text=True)


def numbers(html):
    "The numbers of the invoices listed"
    return re.findall(r'>([^<>]+)<span class="visually-hidden"> \(PDF\)', html)


def csrf(client, url):
    "The CSRF token of the form at url"
    return CSRF.search(text(client.get(url))).group(1)


def log_in(client, root, email, password=PASSWORD, next_=None):
    data = {'csrf_token': csrf(client, root + 'login'), 'email': email,
        'password': password}
    if next_:
        data['next'] = next_
    return client.post(root + 'login', data=data)


def post(client, root, path, data=None, form=None):
    "POST to path with the CSRF token of the form at form (default path)"
    data = dict(data or {})
    data['csrf_token'] = csrf(client, root + (path if form is None else form))
    return client.post(root + path, data=data)


def set_config(section, option, value):
    if not trytond_config.has_section(section):
        trytond_config.add_section(section)
    trytond_config.set(section, option, value)


@pytest.fixture
def portal_config():
    "[dunning_portal] options set by a test, removed after it"
    set_config('dunning_portal', 'poll_interval', '10')
    try:
        yield lambda option, value: set_config(
            'dunning_portal', option, str(value))
    finally:
        trytond_config.remove_section('dunning_portal')


def portal_on_localhost(tryton):
    "Links of reminders that werkzeug's test client can follow"
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.dunning_portal_url = (
        f"http://localhost/{tryton['config'].database_name}")
    configuration.save()


@pytest.fixture
def garages(tryton_portal):
    """Garage Lenoir (a portal login) owes INV overdue since April and one
    not due yet, and paid a third; Garage Martin, another customer, owes
    one invoice and paid another"""
    world = tryton_portal
    today = dt.date.today()
    lenoir = make_customer("Garage Lenoir", 'lenoir@garage.example')
    martin = make_customer("Garage Martin", 'martin@garage.example')
    overdue = make_invoice(world, lenoir, '1250.00', INVOICE_DATE)
    paid = pay(world, make_invoice(world, lenoir, '300.00', INVOICE_DATE),
        day(2))
    martin_open = make_invoice(world, martin, '999.00', INVOICE_DATE)
    martin_paid = pay(world,
        make_invoice(world, martin, '42.00', INVOICE_DATE), day(3))
    # Numbered in the order of their dates: the recent one last.
    upcoming = make_invoice(world, lenoir, '80.50',
        today - dt.timedelta(days=5))
    make_portal_user(lenoir, 'lenoir@garage.example')
    make_portal_user(martin, 'martin@garage.example')
    return {
        'world': world, 'lenoir': lenoir, 'martin': martin,
        'overdue': overdue, 'upcoming': upcoming, 'paid': paid,
        'martin_open': martin_open, 'martin_paid': martin_paid,
        }


def payment_line(party):
    MoveLine = Model.get('account.move.line')
    line, = MoveLine.find([
            ('party', '=', party.id),
            ('account.type.receivable', '=', True),
            ('credit', '>', 0),
            ], limit=1)
    return line


def test_login_balance_logout(garages, client, root):
    lenoir = garages['lenoir']
    overdue, upcoming, paid = (
        garages['overdue'], garages['upcoming'], garages['paid'])

    page = client.get(root + 'payments')
    assert page.status_code == 303
    assert urlsplit(page.location).path == root + 'login'
    assert parse_qs(urlsplit(page.location).query)['next'] == [
        root + 'payments']

    wrong = log_in(client, root, 'lenoir@garage.example', 'not-it')
    unknown = log_in(client, root, 'nobody@garage.example', 'not-it')
    assert wrong.status_code == unknown.status_code == 401
    error = re.compile(r'<p class="error" role="alert"[^>]*>([^<]+)</p>')
    assert (error.search(text(wrong)).group(1)
        == error.search(text(unknown)).group(1)), (
        "the same words whether the email exists or not")
    assert 'Garage Lenoir' not in text(wrong)
    assert client.get(root).status_code == 303, "still logged out"

    done = log_in(client, root, 'Lenoir@Garage.example',
        next_=root + 'payments')
    assert done.status_code == 303
    assert done.location.endswith(root + 'payments')

    page = client.get(root)
    assert page.status_code == 200
    html = text(page)
    assert 'Garage Lenoir' in html
    assert 'lang="en"' in html
    rows = dict(re.findall(
            r'<tr data-invoice="(\d+)" data-status="(\w+)">', html))
    assert rows == {str(overdue.id): 'overdue', str(upcoming.id): 'open'}, (
        "the open invoices, not the paid one")
    assert numbers(html) == [overdue.number, upcoming.number]
    assert '$1,250.00' in html and '$80.50' in html
    assert '$1,330.50' in html, "the total due"
    days_late = (dt.date.today() - DUE).days
    assert f'<td data-label="Days late" class="num">{days_late}</td>' in html
    assert f'invoices/{overdue.id}.pdf' in html
    assert 'href="%spay"' % root in html
    assert 'href="%splans/new"' % root in html
    assert 'statement.pdf' in html

    page = client.get(root + 'invoices/paid')
    assert page.status_code == 200
    assert numbers(text(page)) == [paid.number]
    assert '$300.00' in text(page)

    page = client.get(root + 'payments')
    assert page.status_code == 200
    line = payment_line(lenoir)
    assert f'payments/{line.id}/receipt.pdf' in text(page)
    assert '$300.00' in text(page)

    out = post(client, root, 'logout', form='')
    assert out.status_code == 303
    assert client.get(root).status_code == 303, "logged out"


def test_login_next_stays_in_portal(garages, root):
    from trytond.wsgi import app
    for next_ in ['https://evil.example/', '//evil.example/x',
            '/other/path', 'javascript:alert(1)']:
        done = log_in(Client(app), root, 'lenoir@garage.example',
            next_=next_)
        assert done.status_code == 303
        assert urlsplit(done.location).path == root, next_
        assert urlsplit(done.location).netloc in {'', 'localhost'}
