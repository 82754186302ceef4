"""Fixtures shared by the end-to-end tests: a real SMTP server and a Tryton
database with the company, chart, fiscal year and policy of a car-parts
distributor."""
import datetime as dt
import email
import email.policy
import socket
import threading
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller

from trytond import config as trytond_config

YEAR = 2026


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Mailbox:
    """Accepts and keeps every message, or refuses them while `down`."""

    def __init__(self):
        self.messages = []
        self.down = False
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.down:
            return '451 4.3.0 Mail server temporarily unavailable'
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return '250 OK'

    def by_subject(self, text):
        return [m for m in self.messages if text in m['Subject']]


def pytest_collection_modifyitems(items):
    """Mark the tests served over HTTP by a server thread: on SQLite they
    need a database file, which the server's threads share (an in-memory
    database belongs to the thread that opened it)."""
    for item in items:
        if 'portal_server' in getattr(item, 'fixturenames', ()):
            item.add_marker('live_server')


@pytest.fixture
def mailbox():
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname='127.0.0.1', port=port)
    controller.start()
    trytond_config.set('email', 'uri', f'smtp://127.0.0.1:{port}')
    trytond_config.set(
        'email', 'from', 'Pieces Auto Pro <accounts@pieces-auto.example>')
    try:
        yield handler
    finally:
        controller.stop()


def body_of(message, subtype='plain'):
    return message.get_body(preferencelist=(subtype,)).get_content()


@pytest.fixture
def tryton():
    """A fresh database with dunning_advanced and a configured company"""
    yield from world('dunning_advanced')


@pytest.fixture
def tryton_sms():
    """The same with dunning_sms activated too"""
    yield from world(['dunning_advanced', 'dunning_sms'])


def world(modules):
    from functools import partial

    from proteus import Model
    from trytond.modules.account.tests.tools import (
        create_chart, get_accounts)
    from trytond.modules.account_invoice.tests.tools import (
        create_payment_term)
    from trytond.modules.company.tests.tools import create_company
    from trytond.cache import MemoryCache
    from trytond.tests.test_tryton import drop_db
    from trytond.tests.tools import activate_modules

    # Tryton dates some moves on the real today, whatever the run's date.
    years = tuple(sorted({YEAR, dt.date.today().year}))
    # The books are built once per list of modules and kept in Tryton's
    # test cache with them: every later test restores them in a copy.
    config = activate_modules(modules, create_company, create_chart,
        partial(build_world, years=years))
    # The database is restored from a copy: values cached by the previous
    # test would name records the copy does not have.
    MemoryCache._clear_all(config.database_name)
    User = Model.get('res.user')
    config._context = User.get_preferences(True, config.context)
    config.skip_warning = True

    Template = Model.get('product.template')
    parts, = Template.find([('name', '=', "Brake pads set")])
    Fee = Model.get('account.dunning.fee')
    fee, = Fee.find([('name', '=', "Late-payment fee")])
    PaymentMethod = Model.get('account.invoice.payment.method')
    payment_method, = PaymentMethod.find([('name', '=', "Bank transfer")])
    ModelData = Model.get('ir.model.data')
    Procedure = Model.get('account.dunning.procedure')
    yield {
        'config': config,
        'accounts': get_accounts(),
        'product': parts.products[0],
        'procedure': Procedure(ModelData.get_id(
                'dunning_advanced', 'procedure_default', config.context)),
        'payment_term': create_payment_term(),
        'payment_method': payment_method,
        'fee': fee,
        }
    # Close the connections: on PostgreSQL the next test recreates the
    # database from Tryton's template and cannot while they are open.
    drop_db()


def build_world(config, years):
    """The company's fiscal years, products, late-payment fee, default
    policy and payment method"""
    from proteus import Model
    from trytond.modules.account.tests.tools import (
        create_fiscalyear, get_accounts)
    from trytond.modules.account_invoice.tests.tools import (
        set_fiscalyear_invoice_sequences)

    User = Model.get('res.user')
    config._context = User.get_preferences(True, config.context)
    config.skip_warning = True
    for year in years:
        fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(
                today=(dt.date(year, 1, 1), dt.date(year, 12, 31))))
        fiscalyear.click('create_period')
    accounts = get_accounts()

    Journal = Model.get('account.journal')
    revenue_journal, = Journal.find([('code', '=', 'REV')])
    cash_journal, = Journal.find([('code', '=', 'CASH')])

    ProductCategory = Model.get('product.category')
    category = ProductCategory(name="Parts", accounting=True)
    category.account_revenue = accounts['revenue']
    category.account_expense = accounts['expense']
    category.save()
    Uom = Model.get('product.uom')
    unit, = Uom.find([('name', '=', 'Unit')])
    Template = Model.get('product.template')
    parts = Template(name="Brake pads set", default_uom=unit, type='service',
        list_price=Decimal('100.00'), account_category=category,
        salable=True)
    parts.save()
    fee_template = Template(name="Late-payment fee", default_uom=unit,
        type='service', list_price=Decimal('40.00'),
        account_category=category)
    fee_template.save()

    Fee = Model.get('account.dunning.fee')
    fee = Fee(name="Late-payment fee", product=fee_template.products[0],
        journal=revenue_journal, compute_method='list_price')
    fee.save()

    ModelData = Model.get('ir.model.data')
    Procedure = Model.get('account.dunning.procedure')
    procedure = Procedure(ModelData.get_id(
            'dunning_advanced', 'procedure_default', config.context))
    final, = [l for l in procedure.levels if l.offset_days == 21]
    final.fee = fee
    procedure.save()

    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.default_dunning_procedure = procedure
    configuration.default_account_receivable = accounts['receivable']
    configuration.dunning_portal_url = 'https://portal.pieces-auto.example'
    configuration.dunning_contact = 'Claire, accounts, +33 1 23 45 67 89'
    configuration.save()

    PaymentMethod = Model.get('account.invoice.payment.method')
    payment_method = PaymentMethod(name="Bank transfer",
        journal=cash_journal, credit_account=accounts['cash'],
        debit_account=accounts['cash'])
    payment_method.save()


def make_customer(name, email_address=None, lang='en'):
    from proteus import Model
    Party = Model.get('party.party')
    Lang = Model.get('ir.lang')
    party = Party(name=name)
    party.lang, = Lang.find([('code', '=', lang)])
    address, = party.addresses
    address.street = "12 rue des Garages"
    address.postal_code = "69003"
    address.city = "Lyon"
    if email_address:
        contact = party.contact_mechanisms.new(type='email')
        contact.value = email_address
    party.save()
    return party


def make_invoice(world, party, amount, invoice_date, days=30):
    """Post a customer invoice due `days` after its date"""
    from proteus import Model
    Invoice = Model.get('account.invoice')
    PaymentTerm = Model.get('account.invoice.payment_term')
    term = PaymentTerm(name=f"Net {days}")
    delta = term.lines.new(type='remainder')
    delta.relativedeltas.new(days=days)
    term.save()
    invoice = Invoice(type='out')
    invoice.party = party
    invoice.invoice_date = invoice_date
    invoice.payment_term = term
    line = invoice.lines.new()
    line.product = world['product']
    line.quantity = 1
    line.unit_price = Decimal(amount)
    invoice.click('post')
    return invoice


def pay(world, invoice, date, amount=None):
    from proteus import Wizard
    pay_wizard = Wizard('account.invoice.pay', [invoice])
    pay_wizard.form.payment_method = world['payment_method']
    pay_wizard.form.date = date
    if amount is not None:
        pay_wizard.form.amount = Decimal(amount)
    pay_wizard.execute('choice')
    if pay_wizard.form_state == 'ask':
        pay_wizard.form.type = 'partial'
        pay_wizard.execute('pay')
    invoice.reload()
    return invoice


def run_dunning(date, dry_run=False, cron=True):
    """The run of date, then, unless cron is False, the cron that sends
    what waited for the customers' hours: past days are long gone"""
    from proteus import Wizard, config
    wizard = Wizard('account.dunning.run_wizard')
    wizard.form.date = date
    wizard.form.dry_run = dry_run
    wizard.execute('run_')
    if cron and not dry_run:
        send_pending(config.get_config())
    return wizard.form.summary


def send_pending(config):
    "What trytond-cron does every few minutes, and a worker after it"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    from trytond.worker import run_task
    pool = Pool(config.database_name)
    with Transaction().start(config.database_name, config.user,
            context=config.context) as transaction:
        pool.get('account.dunning.message').send_pending()
        transaction.commit()
        tasks = list(transaction.tasks)
        transaction.tasks.clear()
    for task_id in tasks:
        run_task(pool, task_id)


def signed(config, sign, *args, **kwargs):
    """sign(*args, **kwargs) of a link, in a transaction of the database:
    the keys are in a table no model reads"""
    from trytond.transaction import Transaction
    with Transaction().start(config.database_name, config.user,
            context=config.context) as transaction:
        token = sign(*args, **kwargs)
        transaction.commit()
    return token


def pytest_terminal_summary(terminalreporter):
    "Show what tests recorded with record_property, -s or not"
    for status in ('passed', 'failed'):
        for report in terminalreporter.getreports(status):
            for name, value in report.user_properties:
                terminalreporter.write_line(
                    f"{report.nodeid}: {name} = {value}")
