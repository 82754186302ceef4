"""An accountant's mistake gets a message naming it, and nothing is saved."""
import datetime as dt
from decimal import Decimal

import pytest
from proteus import Model

from conftest import YEAR, make_customer, make_invoice, run_dunning


def refused(action):
    with pytest.raises(Exception) as info:
        action()
    return str(info.value)


def test_levels_out_of_order(tryton):
    Procedure = Model.get('account.dunning.procedure')
    procedure = Procedure(name="Reversed")
    procedure.levels.new(name="Late", sequence=1, offset_days=10)
    procedure.levels.new(name="Early", sequence=2, offset_days=3)
    message = refused(procedure.save)
    assert '"Early" (3 days) must come after level "Late" (10 days)' in (
        message)
    assert not Procedure.find([('name', '=', "Reversed")])


def test_negative_interest_rate(tryton):
    procedure = tryton['procedure']
    level = procedure.levels[2]
    level.interest_rate = Decimal('-0.05')
    message = refused(procedure.save)
    assert "cannot be negative" in message and level.name in message
    procedure.reload()
    assert procedure.levels[2].interest_rate is None


def test_interest_without_account(tryton):
    procedure = tryton['procedure']
    procedure.levels[3].interest_rate = Decimal('0.08')
    message = refused(procedure.save)
    assert "interest journal and interest account" in message
    procedure.reload()
    assert procedure.levels[3].interest_rate is None


def test_fee_without_account(tryton):
    Template = Model.get('product.template')
    Uom = Model.get('product.uom')
    Fee = Model.get('account.dunning.fee')
    unit, = Uom.find([('name', '=', 'Unit')])
    no_account = Template(name="Admin fee", default_uom=unit,
        type='service', list_price=Decimal('15'))
    no_account.save()
    fee = Fee(name="Admin fee", product=no_account.products[0],
        journal=tryton['fee'].journal, compute_method='list_price')
    message = refused(fee.save)
    assert '"Admin fee" needs a journal and a product with a revenue' in (
        message)
    assert not Fee.find([('name', '=', "Admin fee")])


def test_template_unknown_placeholder(tryton):
    Template = Model.get('account.dunning.template')
    template = Template(name="Typo", subject="Hello ${custmer}",
        body="Pay ${total_due}")
    message = refused(template.save)
    assert '"${custmer}"' in message and "${" not in message.split(
        'Use one of')[1]
    assert not Template.find([('name', '=', "Typo")])


def test_run_in_closed_period(tryton, mailbox):
    Period = Model.get('account.period')
    Dunning = Model.get('account.dunning')
    party = make_customer("Fleet Services Ltd", 'ap@fleet.example')
    make_invoice(tryton, party, '250.00', dt.date(YEAR, 1, 5))
    # A month past: a real run after today is refused for its date.
    november, = Period.find([
            ('start_date', '=', dt.date(YEAR, 11, 1)),
            ('type', '=', 'standard')])
    november.click('close')
    message = refused(lambda: run_dunning(dt.date(YEAR, 11, 16)))
    assert "is closed" in message and november.name in message
    assert Dunning.find([]) == []
    assert mailbox.messages == []


def test_run_without_fiscal_year(tryton):
    message = refused(lambda: run_dunning(dt.date(YEAR - 5, 1, 1)))
    assert "no accounting period" in message
