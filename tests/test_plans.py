"""Payment plans end to end: a customer proposes and accepts a plan in the
portal, the ledger reschedules the invoice, the daily run pauses its
reminders but for a courtesy note before each instalment, a missed
instalment breaks the plan and the reminders resume where they were."""
import datetime as dt
import re
from decimal import Decimal
from html import unescape
from urllib.parse import quote, urlencode

import pytest
from proteus import Model
from werkzeug.test import Client

from conftest import body_of, make_customer, make_invoice, pay, run_dunning
from portal_support import PASSWORD, make_portal_user, tryton_portal  # noqa

TODAY = dt.date.today()
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
ERRORS = re.compile(r'<li>([^<]+)</li>')


def weekday_from(date):
    "The first weekday from date on: the reminders of a run go out then"
    while date.weekday() >= 5:
        date += dt.timedelta(days=1)
    return date


def weekday_until(date):
    "The last weekday up to date"
    while date.weekday() >= 5:
        date -= dt.timedelta(days=1)
    return date


def days(offset):
    return TODAY + dt.timedelta(days=offset)


def run_on(date):
    """The run of date at noon that day: a real run waits for its day,
    which the plan's instalments are days ahead of"""
    from proteus import config
    from trytond.pool import Pool
    config = config.get_config()
    Date = Pool(config.database_name).get('ir.date')
    noon = dt.datetime.combine(date, dt.time(12), dt.timezone.utc)
    with pytest.MonkeyPatch.context() as patch, config.set_context(
            dunning_now=noon):
        patch.setattr(Date, 'today',
            classmethod(lambda cls, timezone=None: date))
        run_dunning(date)


def ensure_fiscal_years(*dates):
    "The runs of these dates need an open period"
    from trytond.modules.account.tests.tools import create_fiscalyear
    from trytond.modules.account_invoice.tests.tools import (
        set_fiscalyear_invoice_sequences)
    FiscalYear = Model.get('account.fiscalyear')
    for year in sorted({d.year for d in dates}):
        if not FiscalYear.find([
                    ('start_date', '<=', dt.date(year, 1, 1)),
                    ('end_date', '>=', dt.date(year, 12, 31))]):
            fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(
                    today=(dt.date(year, 1, 1), dt.date(year, 12, 31))))
            fiscalyear.click('create_period')


def text(response):
    return unescape(response.get_data(as_text=True))


def problems(response):
    return ERRORS.findall(text(response))


class Customer:
    "A customer's browser on the portal, through werkzeug's test client"

    def __init__(self, world, email):
        from trytond.wsgi import app
        self.client = Client(app)
        self.root = f"/{quote(world['config'].database_name)}/portal/"
        page = self.client.get(self.root + 'login')
        response = self.client.post(self.root + 'login', data={
                'csrf_token': CSRF.search(text(page)).group(1),
                'email': email, 'password': PASSWORD})
        assert response.status_code == 303, text(response)

    def get(self, path, **args):
        query = urlencode(args, doseq=True)
        return self.client.get(self.root + path + ('?' + query if query
                else ''))

    def preview(self, invoices, **args):
        args.setdefault('mode', 'instalments')
        return self.get('plans/new', invoice=[i.id for i in invoices],
            **args)

    def accept(self, preview):
        "Accept the schedule the preview page shows, as its button does"
        form, = re.findall(
            r'<form method="post" action="[^"]*/plans/new".*?</form>',
            text(preview), re.S)
        data = {}
        for name, value in HIDDEN.findall(form):
            data.setdefault(name, []).append(value)
        return self.client.post(self.root + 'plans/new', data=data)

    def post(self, path, data):
        data = dict(data)
        data['csrf_token'] = CSRF.search(text(
                self.get('plans/new'))).group(1)
        return self.client.post(self.root + path, data=data)


def open_lines(party):
    MoveLine = Model.get('account.move.line')
    return MoveLine.find([
            ('party', '=', party.id),
            ('account.type.receivable', '=', True),
            ('reconciliation', '=', None),
            ('move.state', '=', 'posted'),
            ], order=[('maturity_date', 'ASC'), ('id', 'ASC')])


def audit_kinds(party):
    Audit = Model.get('account.dunning.audit')
    return sorted(a.kind for a in Audit.find([
                ('party', '=', party.id), ('kind', 'like', 'plan_%')]))


def sent_to(mailbox, address):
    """What the customer received: the name of each reminder's level, or
    the key of a message that is no reminder"""
    Level = Model.get('account.dunning.level')
    names = []
    for message in mailbox.messages:
        if address in message['To']:
            level = message['X-Dunning-Key'].split(':')[2]
            names.append(Level(int(level)).name if level.isdigit()
                else level)
    return names


def bodies(mailbox, address):
    return [body_of(m) for m in mailbox.messages if address in m['To']]


def discounted_invoice(world, party, amount, invoice_date):
    """A posted invoice due 30 days after its date, 2 % off when paid
    within 60 days"""
    Configuration = Model.get('account.configuration')
    Journal = Model.get('account.journal')
    PaymentTerm = Model.get('account.invoice.payment_term')
    Invoice = Model.get('account.invoice')
    configuration = Configuration(1)
    configuration.early_discount_account = world['accounts']['expense']
    configuration.early_discount_journal, = Journal.find(
        [('code', '=', 'MISC')])
    configuration.save()
    term = PaymentTerm(name="2 % within 60 days, net 30")
    term.early_discount_rate = Decimal('0.02')
    term.early_discount_days = 60
    term.lines.new(type='remainder').relativedeltas.new(days=30)
    term.save()
    invoice = Invoice(type='out', party=party, invoice_date=invoice_date,
        payment_term=term)
    line = invoice.lines.new()
    line.product = world['product']
    line.quantity = 1
    line.unit_price = Decimal(amount)
    invoice.click('post')
    return invoice


@pytest.fixture
def policy(tryton_portal):
    "Plans allowed on the shipped policy, with its other default limits"
    procedure = tryton_portal['procedure']
    procedure.plan_allowed = True
    procedure.save()
    return procedure


@pytest.fixture
def lenoir(tryton_portal, policy):
    """Garage Lenoir owes 1000.00 due 20 days ago, which the run of a few
    days ago took to the firm reminder; it has a portal login"""
    world = tryton_portal
    due = days(-20)
    ensure_fiscal_years(days(-50), days(60))
    party = make_customer("Garage Lenoir", 'lenoir@garage.example')
    make_portal_user(party, 'lenoir@garage.example')
    invoice = make_invoice(world, party, '1000.00', due - dt.timedelta(
            days=30))
    run_dunning(weekday_until(days(-1)))
    return {'party': party, 'invoice': invoice}


def test_plan_kept_paused_then_broken_resumes_and_counts(
        tryton_portal, lenoir, mailbox):
    world = tryton_portal
    party, invoice = lenoir['party'], lenoir['invoice']
    Dunning = Model.get('account.dunning')
    Plan = Model.get('account.dunning.plan')
    Party = Model.get('party.party')
    before, = Dunning.find([('line.party', '=', party.id)])
    assert before.level.name == "Firm reminder"
    garage = Customer(world, 'lenoir@garage.example')

    preview = garage.preview([invoice], count=3, frequency='two_weeks')
    assert preview.status_code == 200, problems(preview)
    page = text(preview)
    assert re.findall(r'data-date="([^"]+)"', page) == [
        days(0).isoformat(), days(14).isoformat(), days(28).isoformat()]
    assert re.findall(r'data-amount="([^"]+)"', page) == [
        '333.33', '333.33', '333.34']
    assert 'data-total="1000.00"' in page
    assert Plan.find([]) == [], "seeing a schedule changes nothing"

    accepted = garage.accept(preview)
    assert accepted.status_code == 303
    plan, = Plan.find([])
    assert accepted.location.endswith(f'/plans/{plan.id}')
    assert plan.state == 'active'
    assert plan.accepted_by.email == 'lenoir@garage.example'
    assert plan.resume_level == before.level

    # The ledger: the invoice's line reconciled, three new lines due on
    # the instalments' dates that add up to what was owed.
    instalments = open_lines(party)
    assert [(l.maturity_date, l.debit) for l in instalments] == [
        (days(0), Decimal('333.33')), (days(14), Decimal('333.33')),
        (days(28), Decimal('333.34'))]
    assert sum(l.debit for l in instalments) == Decimal('1000.00')
    original, = [l for l in invoice.move.lines if l.account.type.receivable]
    assert original.reconciliation
    invoice.reload()
    assert invoice.state == 'posted' and invoice.amount_to_pay == Decimal(
        '1000.00')
    assert audit_kinds(party) == [
        'plan_accepted', 'plan_proposed', 'plan_rescheduled']
    shown = text(garage.get(f'plans/{plan.id}'))
    assert shown.count('data-paid="no"') == 3
    balance = text(garage.get(''))
    assert re.search(r'data-invoice="%d" data-status="plan"' % invoice.id,
        balance), "the balance shows the invoice in a plan"
    assert garage.preview([invoice], count=2).status_code == 400, (
        "an invoice in a plan cannot be in another")

    # The first instalment is paid; the run before the second sends its
    # courtesy reminder only.
    pay(world, invoice, days(0), '333.33')
    assert [l.maturity_date for l in open_lines(party)] == [
        days(14), days(28)]
    assert 'data-paid="yes"' in text(garage.get(f'plans/{plan.id}'))
    courtesy_day = weekday_from(days(7))
    run_on(courtesy_day)
    assert sent_to(mailbox, 'lenoir@garage.example') == [
        "Courtesy reminder"]
    body, = bodies(mailbox, 'lenoir@garage.example')
    assert f'{invoice.number} (instalment 2/3)' in body
    plan.reload()
    assert plan.state == 'active'

    # The second instalment is missed: 5 days after its date the plan
    # breaks, the customer is told, and the reminders resume at the firm
    # reminder the invoice had reached.
    mailbox.messages.clear()
    break_day = weekday_from(days(14 + 5))
    run_on(break_day)
    plan.reload()
    assert plan.state == 'broken' and plan.ended == break_day
    assert 'plan_broken' in audit_kinds(party)
    assert sorted(sent_to(mailbox, 'lenoir@garage.example')) == [
        "Firm reminder", f'plan-{plan.id}']
    told = [m for m in mailbox.messages
        if m['Subject'].startswith("Your payment plan has ended")]
    assert len(told) == 1
    assert "the instalment due on" in body_of(told[0])
    resumed = Dunning.find([('line', 'in', [l.id for l in open_lines(
                        party)])])
    assert {d.level.name for d in resumed} == {"Firm reminder"}
    assert len(resumed) == 2
    party = Party(party.id)
    figures, = party.dunning_segment_figures
    assert figures.broken_plans == 1
    assert party.dunning_segment != 'high_risk'

    # A second plan, broken too, makes the customer high risk: no more
    # plans online.
    again = garage.preview([invoice], count=2, frequency='two_weeks')
    assert again.status_code == 200, problems(again)
    assert garage.accept(again).status_code == 303
    second, = Plan.find([('state', '=', 'active')])
    run_on(weekday_from(break_day + dt.timedelta(days=1)))
    second.reload()
    assert second.state == 'broken'
    party = Party(party.id)
    assert party.dunning_segment_figures[0].broken_plans == 2
    assert party.dunning_segment == 'high_risk'
    refused = garage.preview([invoice], count=2)
    assert refused.status_code == 400
    assert "cannot propose a payment plan online" in text(refused)


def test_policy_limits_are_checked_and_refusals_change_nothing(
        tryton_portal, lenoir, mailbox):
    world = tryton_portal
    party, invoice = lenoir['party'], lenoir['invoice']
    procedure = world['procedure']
    Plan = Model.get('account.dunning.plan')
    Procedure = Model.get('account.dunning.procedure')
    garage = Customer(world, 'lenoir@garage.example')
    martin = make_customer("Garage Martin", 'martin@garage.example')
    make_portal_user(martin, 'martin@garage.example')
    martin_invoice = discounted_invoice(world, martin, '6000.00', days(-40))
    lines = [(l.id, l.maturity_date, l.debit) for l in open_lines(party)]
    kinds = audit_kinds(party)

    # Limits that make no sense are refused, naming the limit.
    for field, value, words in [
            ('plan_max_instalments', 0, "Maximum Instalments"),
            ('plan_min_instalment', Decimal('-1'), "Minimum Instalment"),
            ('plan_max_days', 3, "Maximum Duration (days)"),
            ('plan_break_days', -2, "Broken after (days)")]:
        edited = Procedure(procedure.id)
        setattr(edited, field, value)
        with pytest.raises(Exception, match=re.escape(words)):
            edited.save()
    procedure = Procedure(procedure.id)
    assert (procedure.plan_max_instalments, procedure.plan_max_days,
        procedure.plan_break_days) == (6, 120, 5), "nothing saved"

    # Outside the policy: a clear message and nothing changed.
    for args, message in [
            ({'count': 7}, "at most 6 instalments, not 7"),
            ({'count': 6, 'frequency': 'month'}, "at most 120 days"),
            ({'count': 'three'}, 'not "three"'),
            ({'mode': 'date', 'new_date': days(30).isoformat()},
                "The first payment is due on acceptance"),
            ({'mode': 'date', 'new_date': 'soon'}, 'not "soon"')]:
        response = garage.preview([invoice], **args)
        assert response.status_code == 400, args
        assert any(message in p for p in problems(response)), (
            args, problems(response))
    procedure.plan_min_instalment = Decimal('400')
    procedure.save()
    below = garage.preview([invoice], count=3)
    assert below.status_code == 400
    assert [p for p in problems(below)
        if p.startswith("Each instalment must be at least")
        and "400.00" in p and "333.33" in p], problems(below)
    # Someone else's invoice, posted straight to the acceptance.
    stolen = garage.post('plans/new', {'invoice': martin_invoice.id,
            'mode': 'instalments', 'count': 1, 'frequency': 'month'})
    assert stolen.status_code == 400
    assert problems(stolen) == [
        "One of the chosen invoices is not open any more. Reload the page "
        "and choose again."]
    procedure.plan_allowed = False
    procedure.save()
    disabled = garage.preview([invoice], count=2)
    assert disabled.status_code == 400
    assert "cannot be proposed online" in text(disabled)
    assert Plan.find([]) == []
    assert [(l.id, l.maturity_date, l.debit)
        for l in open_lines(party)] == lines
    assert audit_kinds(party) == kinds

    # Above the approval threshold, the plan waits for an accountant and
    # pauses the reminders meanwhile; the ledger moves once approved.
    procedure.plan_allowed = True
    procedure.plan_min_instalment = Decimal('0')
    procedure.plan_approval_above = Decimal('5000')
    procedure.save()
    other = Customer(world, 'martin@garage.example')
    preview = other.preview([martin_invoice], count=3, frequency='month')
    assert "start once an accountant approves them" in text(preview)
    discount, = re.findall(r'<p class="note" data-discount>([^<]+)</p>',
        text(preview))
    assert "early-payment discount" in discount
    assert "5,880.00" in discount and "120.00" in discount, discount
    accepted = other.accept(preview)
    assert accepted.status_code == 303
    plan, = Plan.find([])
    assert plan.state == 'waiting'
    assert "Waiting for approval" in text(other.get(f'plans/{plan.id}'))
    assert len(open_lines(martin)) == 1, "not rescheduled before approval"
    run_on(weekday_from(days(1)))
    assert "Final notice" in sent_to(mailbox, 'lenoir@garage.example')
    assert sent_to(mailbox, 'martin@garage.example') == [], (
        "no overdue reminder while the accountant decides")
    plan.click('approve')
    assert plan.state == 'active' and plan.approved_by
    assert [l.debit for l in open_lines(martin)] == [Decimal('2000.00')] * 3
    assert audit_kinds(martin) == [
        'plan_accepted', 'plan_approved', 'plan_proposed', 'plan_rescheduled']

    # Another customer's plan is as missing as one that does not exist.
    theirs = garage.get(f'plans/{plan.id}')
    missing = garage.get(f'plans/{plan.id + 1000}')
    assert theirs.status_code == missing.status_code == 404
    assert text(theirs) == text(missing)
    assert "Garage Martin" not in text(theirs)
    listed = text(garage.get('plans'))
    assert "You have no payment plan" in listed
    assert f'plans/{plan.id}"' not in listed
    assert f'plans/{plan.id}"' in text(other.get('plans'))
