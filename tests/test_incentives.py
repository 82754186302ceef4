"""Incentives to pay on time: the early-payment discount that the daily run
grants with its VAT, and the quarterly reward of reliable customers."""
import datetime as dt
from contextlib import contextmanager
from decimal import Decimal

import pytest
from proteus import Model

from conftest import (
    YEAR, body_of, make_customer, make_invoice, pay, run_dunning)

INVOICE_DATE = dt.date(YEAR, 3, 2)
DEADLINE = dt.date(YEAR, 3, 12)
DUE = dt.date(YEAR, 4, 1)


@contextmanager
def server(tryton, readonly=False):
    "The pool in a transaction of the test user, as a scheduled job has"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    config = tryton['config']
    with Transaction().start(config.database_name, config.user,
            context=config.context, readonly=readonly) as transaction:
        yield Pool()
        if not readonly:
            transaction.commit()


def refused(action):
    with pytest.raises(Exception) as info:
        action()
    return str(info.value)


def configure_discount(tryton):
    Configuration = Model.get('account.configuration')
    Journal = Model.get('account.journal')
    configuration = Configuration(1)
    configuration.early_discount_account = tryton['accounts']['expense']
    configuration.early_discount_journal, = Journal.find(
        [('code', '=', 'MISC')])
    configuration.save()


def discount_term(rate='0.02', days=10, net=30):
    PaymentTerm = Model.get('account.invoice.payment_term')
    term = PaymentTerm(name=f"{rate} within {days} days, net {net}")
    term.early_discount_rate = Decimal(rate)
    term.early_discount_days = days
    line = term.lines.new(type='remainder')
    line.relativedeltas.new(days=net)
    term.save()
    return term


def vat_product(tryton):
    "A part sold with 20 % VAT"
    from trytond.modules.account.tests.tools import create_tax
    tax = create_tax(Decimal('.20'))
    tax.save()
    accounts = tryton['accounts']
    ProductCategory = Model.get('product.category')
    category = ProductCategory(name="Taxed parts", accounting=True)
    category.account_revenue = accounts['revenue']
    category.account_expense = accounts['expense']
    category.customer_taxes.append(tax)
    category.save()
    Uom = Model.get('product.uom')
    unit, = Uom.find([('name', '=', 'Unit')])
    Template = Model.get('product.template')
    template = Template(name="Alternator", default_uom=unit, type='service',
        list_price=Decimal('1000.00'), account_category=category,
        salable=True)
    template.save()
    return template.products[0], tax


def discounted_invoice(tryton, party, term, product, amount='1000.00'):
    Invoice = Model.get('account.invoice')
    invoice = Invoice(type='out')
    invoice.party = party
    invoice.invoice_date = INVOICE_DATE
    invoice.payment_term = term
    line = invoice.lines.new()
    line.product = product
    line.quantity = 1
    line.unit_price = Decimal(amount)
    invoice.click('post')
    return invoice


@pytest.fixture
def discount(tryton):
    configure_discount(tryton)
    product, tax = vat_product(tryton)
    return {'term': discount_term(), 'product': product, 'tax': tax}


def pay_partly(tryton, invoice, date, amount):
    "The Pay wizard's partial payment: the invoice keeps the rest due"
    from proteus import Wizard
    pay_wizard = Wizard('account.invoice.pay', [invoice])
    pay_wizard.form.payment_method = tryton['payment_method']
    pay_wizard.form.date = date
    pay_wizard.form.amount = Decimal(amount)
    pay_wizard.execute('choice')
    # proteus names the view it stopped at in form_state.
    assert pay_wizard.form_state == 'ask'
    pay_wizard.form.type = 'partial'
    pay_wizard.execute('pay')
    invoice.reload()
    assert invoice.payment_lines
    return invoice


def discount_moves(invoice):
    Move = Model.get('account.move')
    return Move.find([
            ('origin', '=', f'account.invoice,{invoice.id}'),
            ('journal.code', '=', 'MISC'),
            ])


def test_discount_paid_in_time(tryton, discount, mailbox):
    accounts = tryton['accounts']
    party = make_customer("Garage Moreau", 'compta@moreau.example')
    invoice = discounted_invoice(
        tryton, party, discount['term'], discount['product'])
    assert invoice.total_amount == Decimal('1200.00')

    pay_partly(tryton, invoice, dt.date(YEAR, 3, 10), '1176.00')
    assert invoice.state == 'posted'
    assert invoice.amount_to_pay == Decimal('24.00')
    run_dunning(dt.date(YEAR, 3, 11))

    invoice.reload()
    assert invoice.state == 'paid'
    assert all(l.reconciliation for l in invoice.lines_to_pay)
    move, = discount_moves(invoice)
    assert move.state == 'posted'
    assert move.date == dt.date(YEAR, 3, 10), "dated on the payment"
    amounts = {l.account.id: l.debit - l.credit for l in move.lines}
    assert amounts == {
        accounts['expense'].id: Decimal('20.00'),
        accounts['tax'].id: Decimal('4.00'),
        accounts['receivable'].id: Decimal('-24.00'),
        }
    TaxLine = Model.get('account.tax.line')
    tax_lines = {(t.move_line.account.id, t.type, t.amount)
        for t in TaxLine.find([('move_line.move', '=', move.id)])}
    assert tax_lines == {
        (accounts['expense'].id, 'base', Decimal('-20.00')),
        (accounts['tax'].id, 'tax', Decimal('-4.00')),
        }
    declared = sum(t.amount for t in TaxLine.find([
                ('tax', '=', discount['tax'].id), ('type', '=', 'tax')]))
    assert declared == Decimal('196.00'), "200.00 invoiced, 4.00 given back"
    Audit = Model.get('account.dunning.audit')
    entry, = Audit.find([('kind', '=', 'early_discount')])
    assert entry.party == party and entry.amount == Decimal('24.00')

    run_dunning(dt.date(YEAR, 3, 12))
    assert len(discount_moves(invoice)) == 1, "granted once"
    assert len(Audit.find([('kind', '=', 'early_discount')])) == 1
    run_dunning(DUE + dt.timedelta(days=3))
    assert mailbox.messages == [], "nothing left to remind"


def test_discount_paid_a_day_late(tryton, discount, mailbox):
    party = make_customer("Garage Lambert", 'compta@lambert.example')
    invoice = discounted_invoice(
        tryton, party, discount['term'], discount['product'])
    pay_partly(tryton, invoice, DEADLINE + dt.timedelta(days=1), '1176.00')
    run_dunning(DEADLINE + dt.timedelta(days=1))

    invoice.reload()
    assert invoice.state == 'posted'
    assert invoice.amount_to_pay == Decimal('24.00')
    assert discount_moves(invoice) == []
    Audit = Model.get('account.dunning.audit')
    assert Audit.find([('kind', '=', 'early_discount')]) == []

    run_dunning(DUE + dt.timedelta(days=3))
    email, = mailbox.messages
    assert "$24.00" in body_of(email)
    assert "$1,200.00" not in body_of(email)


def receive_payment(tryton, party, amount, date):
    "A bank payment booked on the party's account, not allocated"
    Move = Model.get('account.move')
    Journal = Model.get('account.journal')
    accounts = tryton['accounts']
    move = Move(journal=Journal.find([('code', '=', 'CASH')])[0], date=date)
    move.lines.new(account=accounts['cash'], debit=Decimal(amount))
    move.lines.new(account=accounts['receivable'], party=party,
        credit=Decimal(amount))
    move.click('post')
    return move


def test_discount_unallocated_bank_payment(tryton, discount, mailbox):
    party = make_customer("Garage Faure", 'compta@faure.example')
    other = make_customer("Garage Roux", 'compta@roux.example')
    invoice = discounted_invoice(
        tryton, party, discount['term'], discount['product'])
    late = discounted_invoice(
        tryton, other, discount['term'], discount['product'])
    receive_payment(tryton, party, '1176.00', DEADLINE)
    receive_payment(tryton, other, '1176.00', DEADLINE + dt.timedelta(1))
    run_dunning(DEADLINE + dt.timedelta(days=2))

    invoice.reload()
    assert invoice.state == 'paid'
    move, = discount_moves(invoice)
    assert move.date == DEADLINE
    late.reload()
    assert late.state == 'posted' and discount_moves(late) == []


def test_discount_offers(tryton, discount):
    party = make_customer("Garage Blanc")
    invoices = [discounted_invoice(
            tryton, party, discount['term'], discount['product'])
        for _ in range(3)]
    plain = make_invoice(tryton, party, '500.00', INVOICE_DATE)
    paid = invoices.pop()
    pay_partly(tryton, paid, dt.date(YEAR, 3, 5), '100.00')
    ids = [i.id for i in invoices]

    with server(tryton, readonly=True) as pool:
        Invoice = pool.get('account.invoice')
        offers = Invoice.early_discount_offers(
            ids + [paid.id, plain.id], DEADLINE)
        assert offers == {i: (Decimal('24.00'), Decimal('1176.00'), DEADLINE)
            for i in ids}, "no offer on a paid or a plain invoice"
        assert Invoice.early_discount_offers(
            ids, DEADLINE + dt.timedelta(days=1)) == {}

        from trytond import backend
        if backend.name == 'sqlite':
            from trytond.transaction import Transaction
            connection = Transaction().connection

            def queries(invoice_ids):
                statements = []
                connection.set_trace_callback(statements.append)
                try:
                    Invoice.early_discount_offers(invoice_ids, DEADLINE)
                finally:
                    connection.set_trace_callback(None)
                return len(statements)
            assert queries(ids[:1]) == queries(ids + [paid.id, plain.id])


def test_discount_bad_input(tryton):
    PaymentTerm = Model.get('account.invoice.payment_term')
    count = len(PaymentTerm.find([]))

    message = refused(lambda: discount_term())
    assert "set the early-payment discount account and journal" in message
    assert '"0.02 within 10 days, net 30"' in message
    assert len(PaymentTerm.find([])) == count, "nothing saved"

    configure_discount(tryton)
    for rate, days, text in [
            ('1.5', 10, "must be above 0 and below 1"),
            ('0', 10, "must be above 0 and below 1"),
            ('0.02', -1, "cannot be negative"),
            ]:
        assert text in refused(lambda: discount_term(rate, days))
    term = PaymentTerm(name="Rate only", early_discount_rate=Decimal('0.02'))
    term.lines.new(type='remainder')
    assert '"Rate only": set both' in refused(term.save)
    assert len(PaymentTerm.find([])) == count

    discount_term()
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.early_discount_account = None
    assert "set the early-payment discount account" in refused(
        configuration.save)


def configure_reward(tryton, rate='0.005', minimum='1.00'):
    Configuration = Model.get('account.configuration')
    Template = Model.get('product.template')
    Uom = Model.get('product.uom')
    unit, = Uom.find([('name', '=', 'Unit')])
    template = Template(name="On-time payment reward", default_uom=unit,
        type='service', list_price=Decimal('0'),
        account_category=tryton['product'].account_category)
    template.save()
    configuration = Configuration(1)
    configuration.on_time_reward_rate = Decimal(rate)
    configuration.on_time_reward_product = template.products[0]
    configuration.on_time_reward_minimum = Decimal(minimum)
    configuration.save()


def test_reward_rate_without_product(tryton):
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.on_time_reward_rate = Decimal('0.005')
    assert "choose the on-time reward product" in refused(configuration.save)
    configuration = Configuration(1)
    assert configuration.on_time_reward_rate is None


def test_reward_reliable_customer(tryton):
    Party = Model.get('party.party')
    if 'dunning_segment' not in Party._fields:
        pytest.skip("party.party has no dunning_segment yet")
    configure_reward(tryton)
    reliable = make_customer("Garage Fidèle", 'compta@fidele.example')
    late = make_customer("Garage Tardif", 'compta@tardif.example')
    invoices = [(make_invoice(tryton, party, amount, invoice_date), paid_on)
        for party, invoice_date, amount, paid_on in [
            (reliable, dt.date(YEAR, 1, 5), '4000.00', dt.date(YEAR, 2, 1)),
            (late, dt.date(YEAR, 1, 5), '3000.00', dt.date(YEAR, 2, 20)),
            (reliable, dt.date(YEAR, 2, 2), '6000.00', dt.date(YEAR, 3, 4)),
            ]]
    for invoice, paid_on in invoices:
        pay(tryton, invoice, paid_on)
        assert invoice.state == 'paid'
    # The daily run learns the segments from the payment history.
    run_dunning(dt.date(YEAR, 4, 2))
    reliable.reload()
    late.reload()
    assert reliable.dunning_segment == 'reliable'
    assert late.dunning_segment != 'reliable'

    Reward = Model.get('account.dunning.reward')
    with server(tryton) as pool:
        Company = pool.get('company.company')
        company, = Company.search([])
        proposed = pool.get('account.dunning.reward').propose_last_quarter(
            dt.date(YEAR, 4, 2))
        assert len(proposed) == 1
        again = pool.get('account.dunning.reward').propose(
            company, dt.date(YEAR, 1, 1), dt.date(YEAR, 3, 31))
        assert again == [], "one reward a quarter"

    reward, = Reward.find([])
    assert reward.party == reliable
    assert (reward.start, reward.end) == (
        dt.date(YEAR, 1, 1), dt.date(YEAR, 3, 31))
    assert reward.paid_on_time == Decimal('10000.00')
    assert reward.amount == Decimal('50.00')
    assert reward.state == 'proposed'
    credit_note = reward.credit_note
    assert credit_note.state == 'draft' and credit_note.party == reliable
    assert credit_note.total_amount == Decimal('-50.00')
    line, = credit_note.lines
    assert line.quantity == -1 and f"Q1 {YEAR}" in line.description
    Audit = Model.get('account.dunning.audit')
    entry, = Audit.find([('kind', '=', 'reward_proposed')])
    assert entry.amount == Decimal('50.00')

    credit_note.invoice_date = dt.date(YEAR, 4, 3)
    credit_note.click('post')
    reward.reload()
    assert reward.state == 'validated'
    assert Reward.find([('state', '=', 'validated')]) == [reward]
