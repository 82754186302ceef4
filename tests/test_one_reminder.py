"""One reminder per customer, run and channel, whatever its lines' levels;
levels jumped keep their fee and block; one collection case per customer.

What the customer notices is read from a real SMTP server; what the
accountant notices, through proteus."""
import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from proteus import Model

from trytond.exceptions import UserError, UserWarning

from conftest import (
    YEAR, body_of, make_customer, make_invoice, run_dunning)

DUE = dt.date(YEAR, 4, 1)


def day(offset):
    return DUE + dt.timedelta(days=offset)


def invoice_due(world, party, amount, due):
    return make_invoice(world, party, amount, due - dt.timedelta(days=30))


def messages_of(party):
    Message = Model.get('account.dunning.message')
    return Message.find([('party', '=', party.id)], order=[('id', 'ASC')])


def row_of(text, invoice):
    "The row of invoice in the table of a reminder's text"
    row, = [l for l in text.splitlines() if l.split()[:1] == [invoice.number]]
    return row


def refuses_a_sale(world, party):
    "Whether confirming a quotation of party is refused, and why"
    Sale = Model.get('sale.sale')
    sale = Sale(party=party)
    line = sale.lines.new()
    line.product = world['product']
    line.quantity = 1
    sale.click('quote')
    world['config'].skip_warning = False
    try:
        with pytest.raises((UserError, UserWarning)) as refused:
            sale.click('confirm')
    finally:
        world['config'].skip_warning = True
    return str(refused.value)


def test_first_seen_at_45_days_one_collections_notice_blocked_one_fee(
        tryton, mailbox):
    party = make_customer("Transports Morel", 'compta@morel.example')
    invoice = make_invoice(tryton, party, '980.00', DUE - dt.timedelta(30))

    run_dunning(day(45))

    email, = mailbox.messages
    assert "handed over for collection" in email['Subject']
    assert row_of(body_of(email), invoice).split()[-1] == '45'
    assert [(m.channel, m.level.offset_days) for m in messages_of(party)] == [
        ('email', 45), ('letter', 45)]
    party.reload()
    assert party.dunning_ordering_blocked, "blocked with the hand-over"
    assert invoice.number in refuses_a_sale(tryton, party)
    Audit = Model.get('account.dunning.audit')
    fee, = Audit.find([('kind', '=', 'fee_posted')])
    assert fee.amount == Decimal('40.00')
    assert party.receivable == Decimal('1020.00'), "the fee is posted once"
    Task = Model.get('account.dunning.task')
    assert Task.find([('kind', '=', 'call_task')]) == [], (
        "no call for the firm reminder the customer never got")
    Collection = Model.get('account.dunning.collection')
    case, = Collection.find([])
    assert case.party == party and case.amount == Decimal('980.00')

    run_dunning(day(46))
    party.reload()
    assert len(mailbox.messages) == 1 and len(messages_of(party)) == 2
    assert party.receivable == Decimal('1020.00'), "no second fee"
    assert len(Collection.find([])) == 1


def test_lines_at_three_levels_one_reminder_at_the_highest(tryton, mailbox):
    party = make_customer("Carrosserie Blanc", 'ap@blanc.example')
    late = {days: invoice_due(tryton, party, amount, day(25 - days))
        for days, amount in [(25, '360.00'), (12, '250.00'), (4, '130.00')]}

    run_dunning(day(25))

    email, = mailbox.messages
    assert "Final notice" in email['Subject']
    text = body_of(email)
    for days, invoice in late.items():
        assert row_of(text, invoice).split()[-1] == str(days)
    message, letter = messages_of(party)
    assert (message.channel, letter.channel) == ('email', 'letter')
    assert message.level.offset_days == letter.level.offset_days == 21
    assert message.amount == Decimal('740.00')
    Dunning = Model.get('account.dunning')
    assert sorted((d.line.maturity_date, d.level.offset_days)
        for d in Dunning.find([])) == [
        (day(0), 21), (day(13), 10), (day(21), 3)], "each line at its level"
    party.reload()
    assert party.receivable == Decimal('780.00'), "the fee of the final notice"
    Task = Model.get('account.dunning.task')
    assert Task.find([]) == []


def test_one_open_collection_case_joined_by_later_hand_overs(
        tryton, mailbox):
    party = make_customer("Garage Fabre", 'compta@fabre.example')
    first = invoice_due(tryton, party, '500.00', day(0))
    second = invoice_due(tryton, party, '300.00', day(10))

    run_dunning(day(45))
    assert len(mailbox.messages) == 1
    email, = mailbox.messages
    assert "handed over for collection" in email['Subject']
    assert row_of(body_of(email), second).split()[-1] == '35'
    Collection = Model.get('account.dunning.collection')
    case, = Collection.find([])
    assert [d.line.maturity_date for d in case.dunnings] == [day(0)]

    run_dunning(day(46))
    assert len(mailbox.messages) == 1, "nothing new the next day"
    assert len(messages_of(party)) == 2
    assert len(Collection.find([])) == 1

    run_dunning(day(55))
    assert len(mailbox.messages) == 2
    case, = Collection.find([])
    assert case.date == day(45) and case.state == 'open'
    assert case.amount == Decimal('800.00')
    rows = list(csv.DictReader(io.StringIO(case.csv_file.decode())))
    assert sorted(r['invoice'] for r in rows) == sorted(
        [first.number, second.number])

    case.click('close')
    third = invoice_due(tryton, party, '200.00', day(20))
    run_dunning(day(65))
    assert [c.amount for c in Collection.find([('state', '=', 'open')])] == [
        Decimal('200.00')], "a closed case is not reopened: a new one is"
    assert third.number in body_of(mailbox.messages[-1])
