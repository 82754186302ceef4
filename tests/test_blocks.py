"""Blocks that hold: a party whose line reached the level that blocks
ordering cannot order, whoever sells to it, until a member of the Dunning
Override group lifts the block for a time, with a reason."""
import datetime as dt
import re
from decimal import Decimal

import pytest
from proteus import Model

from trytond.exceptions import UserError, UserWarning
from trytond.model.exceptions import AccessError
from trytond.tests.tools import set_user

from conftest import YEAR, make_customer, make_invoice, pay, run_dunning

DUE = dt.date(YEAR, 4, 1)
BLOCKED_DAY = DUE + dt.timedelta(days=30)
SALES = [('sale', 'group_sale'),
    ('account_credit_limit', 'group_credit_limit')]
OVERRIDE = [('dunning_advanced', 'group_dunning_override'),
    ('account', 'group_account')]


def make_user(name, login, groups):
    User = Model.get('res.user')
    Group = Model.get('res.group')
    ModelData = Model.get('ir.model.data')
    Company = Model.get('company.company')
    user = User(name=name, login=login)
    for module, xml_id in groups:
        user.groups.append(Group(ModelData.get_id(module, xml_id, {})))
    company, = Company.find([])
    user.companies.append(company)
    user.company = company
    user.save()
    return user


def quotation(world, party):
    Sale = Model.get('sale.sale')
    sale = Sale(party=party)
    line = sale.lines.new()
    line.product = world['product']
    line.quantity = 2
    sale.click('quote')
    return sale


def today():
    Date = Model.get('ir.date')
    return Date.today({})


@pytest.fixture
def blocked(tryton, mailbox):
    """A customer at the blocking level with five overdue invoices, one of
    them partly paid, one paid and one not yet due"""
    party = make_customer("Garage Dupont", 'compta@garage-dupont.example')
    overdue = [make_invoice(tryton, party, amount, DUE - dt.timedelta(days=30)
                + dt.timedelta(days=shift))
        for amount, shift in [('1000.00', 0), ('250.00', 4), ('1234.56', 9),
            ('80.00', 15), ('612.30', 24)]]
    paid = make_invoice(tryton, party, '300.00', DUE)
    pay(tryton, paid, DUE + dt.timedelta(days=2))
    pay(tryton, overdue[1], DUE + dt.timedelta(days=5), amount='100.00')
    not_due = make_invoice(tryton, party, '999.00', today())
    run_dunning(BLOCKED_DAY)
    party.reload()
    assert party.dunning_ordering_blocked
    return {'party': party, 'overdue': overdue, 'paid': paid,
        'not_due': not_due}


def test_refusal_names_every_overdue_invoice(tryton, blocked):
    tryton['config'].skip_warning = False
    with pytest.raises(UserError) as refused:
        quotation(tryton, blocked['party']).click('confirm')
    message = str(refused.value)
    assert '"Garage Dupont" are on hold' in message
    due_dates = [i.lines_to_pay[0].maturity_date for i in blocked['overdue']]
    amounts = ['$1,000.00', '$150.00', '$1,234.56', '$80.00', '$612.30']
    for invoice, due, amount in zip(blocked['overdue'], due_dates, amounts):
        assert (f"{invoice.number}, due {due.strftime('%m/%d/%Y')}: {amount}"
            in message.splitlines())
    rows = [l for l in message.splitlines() if ', due ' in l]
    assert len(rows) == 5, "the paid and the not yet due invoices are left out"
    assert rows == sorted(rows, key=lambda r: dt.datetime.strptime(
            r.split(', due ')[1][:10], '%m/%d/%Y')), "oldest first"
    assert ('Only a member of the group "Dunning Override" can lift the '
        'block, for a time and with a reason: Administrator.') in message


def test_refusal_in_the_sellers_language(tryton, blocked):
    Lang = Model.get('ir.lang')
    User = Model.get('res.user')
    french, = Lang.find([('code', '=', 'fr')])
    Lang.click([french], 'load_translations')
    admin = User(1)
    admin.language = french
    admin.save()
    set_user(1)
    with pytest.raises(UserError) as refused:
        quotation(tryton, blocked['party']).click('confirm')
    message = str(refused.value)
    invoice = blocked['overdue'][0]
    assert ("Les nouvelles commandes de « Garage Dupont » sont suspendues"
        in message)
    assert re.search(rf"{re.escape(invoice.number)}, échéance 01\.04\.{YEAR} "
        r": 1\s000,00\s\$", message)
    assert ('Seul un membre du groupe « Levée des blocages de relance » peut '
        'lever le blocage') in message


def test_sales_user_cannot_confirm_a_copied_quotation(tryton, blocked):
    Sale = Model.get('sale.sale')
    make_user("Sam Sales", 'sam', SALES)
    sam, = Model.get('res.user').find([('login', '=', 'sam')])
    set_user(sam)
    try:
        original = quotation(tryton, blocked['party'])
        for skip_warning in [False, True]:
            # With every warning skipped, only an error can refuse.
            tryton['config'].skip_warning = skip_warning
            copy, = Sale.duplicate([original])
            assert copy.state == 'draft'
            copy.click('quote')
            with pytest.raises(UserError) as refused:
                copy.click('confirm')
            assert not isinstance(refused.value, UserWarning)
            assert blocked['overdue'][-1].number in str(refused.value)
            copy.reload()
            assert copy.state == 'quotation'
        copy.invoice_party = make_party_as_admin("Dupont Holding")
        copy.shipment_method = 'invoice'
        copy.save()
        with pytest.raises(UserError, match="Garage Dupont"):
            copy.click('confirm')
    finally:
        set_user(1)
        tryton['config'].skip_warning = True
    assert {s.state for s in Sale.find([])} == {'quotation'}


def make_party_as_admin(name):
    "A party that owes nothing, invoiced in place of the blocked one"
    from proteus import config
    user = config.get_config().user
    set_user(1)
    try:
        party = make_customer(name)
    finally:
        set_user(user)
    Party = Model.get('party.party')
    return Party(party.id)


def grant(party, reason, end_date):
    Override = Model.get('account.dunning.block.override')
    override = Override(party=Model.get('party.party')(party.id))
    override.reason = reason
    override.end_date = end_date
    override.save()
    return override


def test_override_lets_the_sale_through_with_an_audit_entry(tryton, blocked):
    party = blocked['party']
    # Tryton's own check of dunning levels, for parties with a credit
    # limit, must not refuse what the override allows.
    party.credit_limit_amount = Decimal('100000')
    party.save()
    make_user("Sam Sales", 'sam', SALES)
    olga = make_user("Olga Override", 'olga', OVERRIDE)
    end = today() + dt.timedelta(days=14)
    reason = "Pays 5,000 by transfer on Friday, signed promise"

    set_user(olga)
    try:
        override = grant(party, reason, end)
        assert override.user == olga and override.state == 'active'
    finally:
        set_user(1)

    sam, = Model.get('res.user').find([('login', '=', 'sam')])
    set_user(sam)
    tryton['config'].skip_warning = False
    try:
        sale = quotation(tryton, party)
        sale.click('confirm')
        assert sale.state in {'confirmed', 'processing'}
    finally:
        set_user(1)
        tryton['config'].skip_warning = True

    Audit = Model.get('account.dunning.audit')
    entry, = Audit.find([('kind', '=', 'block_overridden')])
    assert entry.party == party and entry.user == olga
    assert entry.reason == (
        f"Block lifted until {end.strftime('%m/%d/%Y')}: {reason}")
    party.reload()
    assert party.dunning_ordering_blocked, "the dunning still says blocked"


def test_override_needs_reason_future_end_and_the_group(tryton, blocked):
    party = blocked['party']
    make_user("Olga Override", 'olga', OVERRIDE)
    make_user("Sam Sales", 'sam', SALES)
    User = Model.get('res.user')
    olga, = User.find([('login', '=', 'olga')])
    sam, = User.find([('login', '=', 'sam')])
    yesterday = today() - dt.timedelta(days=1)

    set_user(olga)
    try:
        with pytest.raises(UserError, match=(
                r'cannot end on .*: that day has passed')):
            grant(party, "Promised", yesterday)
        with pytest.raises(UserError, match="for 90 days at most"):
            grant(party, "Promised", today() + dt.timedelta(days=91))
        with pytest.raises(UserError, match='"Reason"'):
            grant(party, None, today())
        with pytest.raises(UserError, match=(
                'Give the reason for lifting the block of "Garage Dupont"')):
            grant(party, "   ", today())
        override = grant(party, "Promised", today())
        override.end_date = today() + dt.timedelta(days=30)
        with pytest.raises(AccessError):
            override.save()
    finally:
        set_user(1)

    set_user(sam)
    try:
        with pytest.raises(AccessError):
            grant(party, "The customer is nice", today())
    finally:
        set_user(1)
    Override = Model.get('account.dunning.block.override')
    assert len(Override.find([])) == 1


def test_block_holds_again_after_the_end_date(tryton, blocked, monkeypatch):
    from trytond.pool import Pool
    party = blocked['party']
    end = today()
    grant(party, "Pays on the phone today", end)
    quotation(tryton, party).click('confirm')

    Date = Pool(tryton['config'].database_name).get('ir.date')
    monkeypatch.setattr(Date, 'today',
        classmethod(lambda cls, timezone=None: end + dt.timedelta(days=1)))
    Override = Model.get('account.dunning.block.override')
    override, = Override.find([])
    assert override.state == 'expired'
    Sale = Model.get('sale.sale')
    copy, = Sale.duplicate([quotation(tryton, party)])
    copy.click('quote')
    with pytest.raises(UserError, match="are on hold"):
        copy.click('confirm')
