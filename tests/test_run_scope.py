"""The run reminds customers of what they owe on posted moves only: an
entry still in draft may change or vanish before it is posted."""
import datetime as dt
from decimal import Decimal

from proteus import Model

from conftest import YEAR, body_of, make_customer, make_invoice, run_dunning

DUE = dt.date(YEAR, 4, 1)


def draft_receivable(world, party, amount, maturity_date):
    "A journal entry charging the customer, saved but not posted"
    Move = Model.get('account.move')
    Journal = Model.get('account.journal')
    journal, = Journal.find([('code', '=', 'REV')])
    move = Move(journal=journal, date=maturity_date - dt.timedelta(days=30))
    move.lines.new(account=world['accounts']['receivable'], party=party,
        debit=Decimal(amount), maturity_date=maturity_date)
    move.lines.new(account=world['accounts']['revenue'],
        credit=Decimal(amount))
    move.save()
    return move


def test_draft_entry_waits_until_posted(tryton, mailbox):
    Dunning = Model.get('account.dunning')
    party = make_customer("Garage du Centre", 'compta@garage-centre.example')
    invoice = make_invoice(
        tryton, party, '250.00', DUE - dt.timedelta(days=30))
    entry = draft_receivable(tryton, party, '999.00', DUE)

    run_dunning(DUE + dt.timedelta(days=3))
    reminder, = mailbox.messages
    assert '250.00' in body_of(reminder)
    assert '999.00' not in body_of(reminder)
    assert [d.line.move.id for d in Dunning.find([])] == [invoice.move.id]

    entry.click('post')
    run_dunning(DUE + dt.timedelta(days=4))
    assert {d.line.move.id for d in Dunning.find([])} == {
        invoice.move.id, entry.id}
