"""What an accountant (or a call to the server) enters on the dunning
models: day counts beyond ten years either way and amounts that are not
numbers (NaN, Infinity) are refused with a message naming the field, and
nothing is saved."""
import datetime as dt
import json
from decimal import Decimal

import pytest
from proteus import Model

from conftest import world


@pytest.fixture
def portal_world():
    "dunning_portal too: its procedures have payment plan limits"
    yield from world(['dunning_advanced', 'dunning_portal'])


def refused(record):
    with pytest.raises(Exception) as info:
        record.save()
    return str(info.value)


def test_level_offsets_beyond_ten_years(tryton):
    procedure = tryton['procedure']
    last = procedure.levels[-1]
    for days in [3651, 100000, -3651]:
        procedure.reload()
        procedure.levels[-1].offset_days = days
        message = refused(procedure)
        assert '"Days from Due Date"' in message, message
        assert str(days) in message and "-3650 and 3650 days" in message
        last.reload()
        assert last.offset_days == 45, "nothing saved"

    procedure.reload()
    procedure.levels[-1].offset_days = 3650
    procedure.save()
    last.reload()
    assert last.offset_days == 3650, "ten years is a limit, not beyond"

    Procedure = Model.get('account.dunning.procedure')
    native = Procedure(name="Native delays")
    native.levels.new(overdue=dt.timedelta(days=4000))
    message = refused(native)
    assert "4000" in message and "-3650 and 3650 days" in message, message
    assert not Procedure.find([('name', '=', "Native delays")])


def test_procedure_day_counts_beyond_ten_years(tryton):
    procedure = tryton['procedure']
    procedure.segment_window_days = 99999
    message = refused(procedure)
    assert '"Look-back Window (days)"' in message, message
    procedure.reload()
    assert procedure.segment_window_days != 99999

    segment = procedure.segments.new(segment='high_risk', tone='firm')
    segment.shift_days = -4000
    message = refused(procedure)
    assert '"Shift (days)"' in message and "-4000" in message, message
    procedure.reload()
    assert all(s.shift_days != -4000 for s in procedure.segments)


def test_plan_limits_beyond_ten_years(portal_world):
    procedure = portal_world['procedure']
    for name, label in [('plan_max_days', "Maximum Duration (days)"),
            ('plan_break_days', "Broken after (days)")]:
        procedure.reload()
        before = getattr(procedure, name)
        setattr(procedure, name, 5000)
        message = refused(procedure)
        assert f'"{label}"' in message and "5000" in message, message
        procedure.reload()
        assert getattr(procedure, name) == before


def test_amounts_that_are_not_numbers(portal_world):
    procedure = portal_world['procedure']
    for value in ['Infinity', '-Infinity', 'NaN']:
        procedure.reload()
        procedure.plan_min_instalment = Decimal(value)
        message = refused(procedure)
        assert '"Minimum Instalment"' in message, message
        assert f'must be a number, not "{value}"' in message, message
        procedure.reload()
        assert procedure.plan_min_instalment.is_finite()

        level = procedure.levels[-1]
        level.interest_rate = Decimal(value)
        message = refused(procedure)
        assert '"Annual Interest Rate"' in message, message
        level.reload()
        assert level.interest_rate is None

    fee = portal_world['fee']
    fee.compute_method = 'percentage'
    fee.percentage = Decimal('NaN')
    message = refused(fee)
    assert '"Percentage"' in message, message
    assert 'must be a number, not "NaN"' in message
    fee.reload()
    assert fee.compute_method == 'list_price'

    Configuration = Model.get('account.configuration')
    for name, label in [
            ('on_time_reward_minimum', "On-Time Reward Minimum"),
            ('portal_payment_minimum', "Minimum Partial Card Payment")]:
        configuration = Configuration(1)
        setattr(configuration, name, Decimal('Infinity'))
        message = refused(configuration)
        assert f'"{label}"' in message, message
        assert getattr(Configuration(1), name) is None

    Term = Model.get('account.invoice.payment_term')
    term = Term(name="2% 10 days", early_discount_rate=Decimal('sNaN'),
        early_discount_days=10)
    term.lines.new(type='remainder')
    message = refused(term)
    assert '"Early-Payment Discount"' in message, message
    assert not Term.find([('name', '=', "2% 10 days")])


def test_infinity_over_rpc(portal_world):
    """The JSON-RPC of the client reads {"__class__": "Decimal", "decimal":
    "Infinity"} as Decimal('Infinity'): written as a user of the client,
    it is refused as a user error, not a server error"""
    from trytond.exceptions import UserError
    from trytond.pool import Pool
    from trytond.protocols.jsonrpc import JSONDecoder
    from trytond.transaction import Transaction
    config = portal_world['config']
    values = json.loads(
        '{"plan_approval_above": {"__class__": "Decimal", '
        '"decimal": "Infinity"}}', object_hook=JSONDecoder())
    assert values['plan_approval_above'] == Decimal('Infinity')
    pool = Pool(config.database_name)
    with Transaction().start(config.database_name, config.user,
            context=config.context) as transaction:
        Procedure = pool.get('account.dunning.procedure')
        procedure = Procedure(portal_world['procedure'].id)
        with transaction.set_context(_check_access=True):
            with pytest.raises(UserError, match='"Approval above"'):
                Procedure.write([procedure], values)
        transaction.rollback()
    procedure = portal_world['procedure']
    procedure.reload()
    assert procedure.plan_approval_above != Decimal('Infinity')
