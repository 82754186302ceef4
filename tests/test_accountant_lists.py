"""What an accountant reads in the dunnings list and the dry run."""
import datetime as dt
from decimal import Decimal

from proteus import Model

from trytond.pyson import PYSONDecoder

from conftest import YEAR, make_customer, make_invoice, run_dunning

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)


def day(offset):
    return DUE + dt.timedelta(days=offset)


def test_dunnings_open_on_the_lines_the_run_put_at_a_level(tryton, mailbox):
    party = make_customer("Garage Lenoir", 'lenoir@garage.example')
    make_invoice(tryton, party, '1250.00', INVOICE_DATE)
    run_dunning(day(3))

    ModelData = Model.get('ir.model.data')
    Action = Model.get('ir.action.act_window')
    config = tryton['config']
    action = Action(ModelData.get_id(
            'account_dunning', 'act_dunning_form', config.context))
    # The tabs as sao gets them, in order: (name, domain, count)
    name, domain, _ = action.domains[0]
    assert name == "Waiting"
    Dunning = Model.get('account.dunning')
    assert len(Dunning.find(PYSONDecoder().decode(domain))) == 1


def test_age_in_days_and_fee_of_the_level(tryton, mailbox):
    late = make_customer("Garage Lenoir", 'lenoir@garage.example')
    make_invoice(tryton, late, '1250.00', INVOICE_DATE)
    early = make_customer("Atelier Martin", 'martin@atelier.example')
    make_invoice(tryton, early, '480.00', INVOICE_DATE + dt.timedelta(days=18))
    run_dunning(day(21))

    Dunning = Model.get('account.dunning')
    final, = Dunning.find([('party', '=', late.id)])
    overdue, = Dunning.find([('party', '=', early.id)])
    assert final.level.name == "Final notice"
    assert final.age_days == f"{(dt.date.today() - day(21)).days} days"
    assert final.fee_amount == Decimal('40.00'), "the fee's list price"
    assert overdue.level.name == "Overdue 3 days"
    assert overdue.fee_amount is None, "the level charges no fee"


def test_dry_run_names_parties_levels_channels_amounts_and_actions(
        tryton, mailbox):
    party = make_customer("Fleet Services Ltd", 'ap@fleet.example')
    invoice = make_invoice(tryton, party, '1980.00', INVOICE_DATE)
    summary = run_dunning(day(45), dry_run=True)

    assert (f"- Fleet Services Ltd: Collections by Email, $1,980.00 "
        f"({invoice.number})") in summary
    assert ("* Fleet Services Ltd: hand $1,980.00 over to collections "
        "(Collections)") in summary
    assert "collection " not in summary.replace("collections", ""), (
        "no action code")
    assert "@" not in summary, "no level by its position in the procedure"
