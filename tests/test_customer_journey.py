"""One customer across sixty days, from the invoice to the payment.

The accountant's side goes through proteus, the customer's side is what a
real SMTP server received."""
import datetime as dt
import re
from decimal import Decimal

import pytest
from proteus import Model

from trytond.exceptions import UserError

from conftest import (
    YEAR, body_of, make_customer, make_invoice, pay, run_dunning)

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)


def day(offset):
    return DUE + dt.timedelta(days=offset)


def confirm_sale(world, party):
    Sale = Model.get('sale.sale')
    sale = Sale(party=party)
    line = sale.lines.new()
    line.product = world['product']
    line.quantity = 2
    sale.click('quote')
    sale.click('confirm')
    return sale


def test_customer_journey(tryton, mailbox):
    world = tryton
    Audit = Model.get('account.dunning.audit')
    Message = Model.get('account.dunning.message')
    Task = Model.get('account.dunning.task')
    Dunning = Model.get('account.dunning')

    garage = make_customer("Garage Dupont", 'compta@garage-dupont.example')
    invoice = make_invoice(world, garage, '1000.00', INVOICE_DATE)
    assert invoice.lines_to_pay[0].maturity_date == DUE

    run_dunning(day(-8))
    assert mailbox.messages == []

    run_dunning(day(-7))
    courtesy, = mailbox.messages
    assert courtesy['To'].addresses[0].addr_spec == (
        'compta@garage-dupont.example')
    text = body_of(courtesy)
    assert "Garage Dupont" in text
    assert invoice.number in text
    assert "$1,000.00" in text
    assert "04/01/2026" in text  # the due date, in the party's language
    assert "https://portal.pieces-auto.example" in text
    opt_out = re.search(
        r'https://portal\.pieces-auto\.example/dunning/opt-out/\S+', text)
    assert opt_out
    assert "process your contact details" in text
    html = body_of(courtesy, 'html')
    assert re.search(r'<td style="[^"]*">%s</td>' % invoice.number, html)
    assert re.search(r'<a href="https://portal\.pieces-auto\.example[^"]*"'
        r'[^>]*>Pay online</a>', html), "a button to pay"

    run_dunning(day(-7))
    assert len(mailbox.messages) == 1, "same date twice sends nothing new"

    run_dunning(day(0))
    assert "due today" in mailbox.messages[-1]['Subject']
    run_dunning(day(3))
    overdue = mailbox.messages[-1]
    assert "overdue" in overdue['Subject']
    assert "3" in body_of(overdue).split(invoice.number)[1].splitlines()[0]

    run_dunning(day(10))
    assert "Second reminder" in mailbox.messages[-1]['Subject']
    task, = Task.find([('party', '=', garage.id)])
    assert task.kind == 'call_task'

    run_dunning(day(21))
    final = mailbox.messages[-1]
    assert "Final notice" in final['Subject']
    assert ("is not paid by 05/01/2026, new orders on your account will be "
        "put on hold") in body_of(final), "the blocking level, 30 days late"
    letter, = Message.find([
            ('party', '=', garage.id), ('channel', '=', 'letter')])
    garage.reload()
    assert garage.receivable == Decimal('1040.00'), "the fee is posted"
    fee_entry, = Audit.find([('kind', '=', 'fee_posted')])
    assert fee_entry.amount == Decimal('40.00')

    sale = confirm_sale(world, garage)
    assert sale.state == 'processing', "not blocked before day 30"

    run_dunning(day(30))
    assert "on hold" in mailbox.messages[-1]['Subject']
    garage.reload()
    assert garage.dunning_ordering_blocked
    # Even the administrator, of the credit limit group, gets an error, not
    # a warning to skip.
    with pytest.raises(UserError) as refused:
        confirm_sale(world, garage)
    assert invoice.number in str(refused.value)
    assert "on hold" in str(refused.value)

    pay(world, invoice, day(33))
    assert invoice.state == 'paid'
    sale = confirm_sale(world, garage)
    assert sale.state == 'processing', "paying unblocks ordering"

    sent = len(mailbox.messages)
    run_dunning(day(45))
    run_dunning(day(60))
    assert len(mailbox.messages) == sent, "no reminder after payment"
    garage.reload()
    assert not garage.dunning_ordering_blocked
    assert Audit.find([('kind', '=', 'ordering_unblocked'),
            ('party', '=', garage.id)])

    emails = Message.find([('channel', '=', 'email')])
    assert len(emails) == 6 == len(mailbox.messages)
    assert {m.state for m in emails} == {'sent'}
    with world['config'].set_context(active_test=False):
        dunning, = Dunning.find([('line.party', '=', garage.id)])
    assert dunning.level.offset_days == 30
    kinds = {e.kind for e in Audit.find([('party', '=', garage.id)])}
    assert {'level_reached', 'message_queued', 'message_sent', 'fee_posted',
        'ordering_blocked', 'ordering_unblocked', 'task_created'} <= kinds
