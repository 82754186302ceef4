"""Payment plans: the policy's limits on the procedure, the plans customers
propose and accept in the portal, their instalments rescheduled in the
ledger with Tryton's own rescheduling, and what the daily run does with
them (pause, courtesy reminders, break, resume)."""
import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sql import Literal, Null
from sql.aggregate import Count

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Workflow, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.currency.fields import Monetary
from trytond.modules.dunning_advanced.bulk import chunks, in_
from trytond.modules.dunning_advanced.engine import classify
from trytond.modules.dunning_advanced.engine import payment_plan as rules
from trytond.modules.dunning_advanced.segment import SEGMENT_SELECTION
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .web_user import link_url

# The policy's limits, by their name in the engine and on the procedure.
LIMIT_FIELDS = {
    'allowed': 'plan_allowed',
    'max_instalments': 'plan_max_instalments',
    'max_days': 'plan_max_days',
    'min_instalment': 'plan_min_instalment',
    'first_payment': 'plan_first_payment',
    'segments': 'plan_segments',
    'approval_above': 'plan_approval_above',
    'break_days': 'plan_break_days',
    }
# The plans that hold their invoices: no overdue reminder, no new plan.
HELD = ('waiting', 'active')
PLAN_KINDS = [
    ('plan_proposed', "Payment Plan Proposed"),
    ('plan_accepted', "Payment Plan Accepted"),
    ('plan_approved', "Payment Plan Approved"),
    ('plan_rescheduled', "Payment Plan Rescheduled"),
    ('plan_cancelled', "Payment Plan Cancelled"),
    ('plan_completed', "Payment Plan Completed"),
    ('plan_broken', "Payment Plan Broken"),
    ]
# The channels that tell a customer their plan broke: the reminders that
# follow go on the level's own channels.
BROKEN_CHANNELS = ('email', 'portal')


def line_amount(currency_id, debit, credit, second_currency, second_amount):
    "A line's amount in currency_id, as Tryton's ``amount`` reads it"
    if second_currency == currency_id and second_amount is not None:
        return Decimal(second_amount)
    return Decimal(debit) - Decimal(credit)


class Procedure(metaclass=PoolMeta):
    __name__ = 'account.dunning.procedure'
    plan_allowed = fields.Boolean("Customers May Propose Plans",
        help="Customers may propose a payment plan or a new date in the "
        "portal, within the limits below.")
    plan_max_instalments = fields.Integer("Maximum Instalments",
        required=True,
        help="A new date for the whole amount counts as one instalment.")
    plan_max_days = fields.Integer("Maximum Duration (days)", required=True,
        help="Days from the acceptance to the last instalment.")
    plan_min_instalment = fields.Numeric("Minimum Instalment",
        required=True, help="In the currency of the invoices.")
    plan_first_payment = fields.Boolean("First Payment on Acceptance",
        help="The first instalment is due the day the customer accepts.")
    plan_segments = fields.MultiSelection(SEGMENT_SELECTION,
        "Segments May Propose",
        help="The customers of the other segments cannot propose a plan.")
    plan_approval_above = fields.Numeric("Approval above",
        help="An accountant approves the plans above this total before "
        "they start; empty for never.")
    plan_break_days = fields.Integer("Broken after (days)", required=True,
        help="A plan breaks when an instalment is still unpaid this many "
        "days after its date: its reminders resume at the level they had.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # The engine's limits are the one source of the defaults.
        defaults = rules.Limits()
        for name, field in LIMIT_FIELDS.items():
            value = getattr(defaults, name)
            if name == 'segments':
                value = sorted(value)
            setattr(cls, f'default_{field}',
                classmethod(lambda cls, v=value: v))
        cls._day_fields |= {'plan_max_days', 'plan_break_days'}

    @property
    def plan_limits(self):
        values = {name: getattr(self, field)
            for name, field in LIMIT_FIELDS.items()}
        values['allowed'] = bool(values['allowed'])
        values['first_payment'] = bool(values['first_payment'])
        values['segments'] = frozenset(values['segments'] or ())
        return rules.Limits(**values)

    @classmethod
    def validate_fields(cls, procedures, field_names):
        super().validate_fields(procedures, field_names)
        if field_names & set(LIMIT_FIELDS.values()):
            for procedure in procedures:
                procedure.check_plan_limits()

    def check_plan_limits(self):
        for name, problem in self.plan_limits.errors():
            field = LIMIT_FIELDS[name]
            raise ValidationError(gettext(
                    f'dunning_portal.msg_plan_limit_{problem}',
                    procedure=self.rec_name,
                    limit=self.__class__.fields_get([field])[field]['string'],
                    value=getattr(self, field),
                    instalments=self.plan_max_instalments))


class Plan(Workflow, ModelSQL, ModelView):
    "Dunning Payment Plan"
    __name__ = 'account.dunning.plan'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One('party.party', "Party", required=True,
        readonly=True, context={'company': Eval('company', -1)},
        depends={'company'})
    procedure = fields.Many2One('account.dunning.procedure', "Procedure",
        required=True, readonly=True,
        help="The policy whose limits the plan keeps.")
    currency = fields.Many2One(
        'currency.currency', "Currency", required=True, readonly=True)
    total = Monetary("Total", currency='currency', digits='currency',
        required=True, readonly=True)
    date = fields.Date("Date", required=True, readonly=True,
        help="The day the customer proposed the plan.")
    lines = fields.One2Many('account.dunning.plan.line', 'plan', "Lines",
        readonly=True,
        help="The receivable lines the plan pays and the level the "
        "reminders of each had reached.")
    instalments = fields.One2Many(
        'account.dunning.plan.instalment', 'plan', "Instalments",
        readonly=True)
    resume_level = fields.Many2One('account.dunning.level', "Resume at",
        readonly=True,
        help="If the plan breaks, its reminders resume at this level: the "
        "highest its lines had reached.")
    approval = fields.Boolean("Needs Approval", readonly=True,
        help="The total is above what the policy lets start without an "
        "accountant.")
    state = fields.Selection([
            ('proposed', "Proposed"),
            ('waiting', "Waiting for Approval"),
            ('active', "Active"),
            ('completed', "Completed"),
            ('broken', "Broken"),
            ('cancelled', "Cancelled"),
            ], "State", required=True, readonly=True, sort=False)
    accepted_at = fields.Timestamp("Accepted at", readonly=True)
    accepted_by = fields.Many2One('web.user', "Accepted by", readonly=True)
    accepted_address = fields.Char("Accepted from", readonly=True,
        help="The network address the customer accepted from.")
    accepted_user_agent = fields.Char("Browser", readonly=True,
        help="The browser the customer accepted with.")
    approved_by = fields.Many2One('res.user', "Approved by", readonly=True)
    approved_at = fields.Timestamp("Approved at", readonly=True)
    ended = fields.Date("Ended", readonly=True,
        help="The day the plan was completed, broken or cancelled.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t,
                (t.party, Index.Equality()),
                (t.state, Index.Equality(cardinality='low'))))
        cls._order = [('date', 'DESC'), ('id', 'DESC')]
        cls._transitions |= {
            ('proposed', 'waiting'),
            ('proposed', 'active'),
            ('waiting', 'active'),
            ('proposed', 'cancelled'),
            ('waiting', 'cancelled'),
            ('active', 'completed'),
            ('active', 'broken'),
            }
        cls._buttons.update({
                'approve': {
                    'invisible': Eval('state') != 'waiting',
                    'depends': ['state'],
                    },
                'cancel': {
                    'invisible': ~Eval('state').in_(['proposed', 'waiting']),
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'proposed'

    @classmethod
    def default_approval(cls):
        return False

    def get_rec_name(self, name):
        return f'{self.party.rec_name} #{self.id}'

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('party.rec_name',) + tuple(clause[1:])]

    @classmethod
    def create(cls, vlist):
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        plans = super().create(vlist)
        Audit.record([Audit.entry('plan_proposed', party=p.party,
                    lines=[l.line for l in p.lines], amount=p.total,
                    date=p.date, reason=p.schedule_text())
                for p in plans])
        return plans

    def schedule_text(self):
        "The instalments as the audit keeps them: date and amount"
        return '; '.join(f'{i.date.isoformat()} {i.amount}'
            for i in self.instalments)

    @classmethod
    def plannable(cls, company, party, date):
        """Return ({invoice id: invoice}, {invoice id: (number, reason)}): the
        party's open invoices a plan may take, each a dict with number,
        currency id, amount, maturity_date and lines ({line id: amount},
        its open lines to pay and payments), and why the others may not.

        A constant number of queries whatever the number of invoices.
        """
        pool = Pool()
        Invoice = pool.get('account.invoice')
        invoice = Invoice.__table__()
        line = pool.get('account.move.line').__table__()
        relation = pool.get('account.invoice-account.move.line').__table__()
        dunning = pool.get('account.dunning').__table__()
        payment = pool.get('account.payment').__table__()
        cursor = Transaction().connection.cursor()

        cursor.execute(*invoice.select(
                invoice.id, invoice.number, invoice.currency,
                where=(invoice.party == party.id)
                & (invoice.company == company.id)
                & (invoice.type == 'out')
                & (invoice.state == 'posted')))
        invoices = {i: {'id': i, 'number': n, 'currency': c, 'lines': {},
                'amount': Decimal(0), 'maturity_date': None}
            for i, n, c in cursor}
        for sub in chunks(list(invoices)):
            # Tryton's lines to pay: those of rescheduled invoices too.
            to_pay = Invoice._query_lines_to_pay(sub)
            cursor.execute(*to_pay.join(line,
                    condition=line.id == to_pay.line).select(
                    to_pay.invoice, line.id, line.maturity_date, line.debit,
                    line.credit, line.second_currency,
                    line.amount_second_currency,
                    where=to_pay.reconciliation == Null))
            for (invoice_id, line_id, maturity, debit, credit, second,
                    second_amount) in cursor:
                info = invoices[invoice_id]
                info['lines'][line_id] = line_amount(
                    info['currency'], debit, credit, second, second_amount)
                if maturity and (not info['maturity_date']
                        or maturity < info['maturity_date']):
                    info['maturity_date'] = maturity
            cursor.execute(*relation.join(line,
                    condition=line.id == relation.line).select(
                    relation.invoice, line.id, line.debit, line.credit,
                    line.second_currency, line.amount_second_currency,
                    where=in_(relation.invoice, sub)
                    & (line.reconciliation == Null)))
            for invoice_id, line_id, debit, credit, second, second_amount in (
                    cursor):
                info = invoices[invoice_id]
                info['lines'][line_id] = line_amount(
                    info['currency'], debit, credit, second, second_amount)

        line_ids = [l for i in invoices.values() for l in i['lines']]
        disputed, processing = set(), set()
        for sub in chunks(line_ids):
            cursor.execute(*dunning.select(dunning.line,
                    where=in_(dunning.line, sub)
                    & (dunning.blocked == Literal(True))
                    & ((dunning.block_until == Null)
                        | (dunning.block_until >= date))))
            disputed.update(l for l, in cursor)
            cursor.execute(*payment.select(payment.line,
                    where=in_(payment.line, sub)
                    & payment.state.in_(
                        ['submitted', 'approved', 'processing'])))
            processing.update(l for l, in cursor)
        held = cls.held_invoices(list(invoices))

        available, refused = {}, {}
        for invoice_id, info in invoices.items():
            info['amount'] = sum(info['lines'].values(), Decimal(0))
            if info['amount'] <= 0:
                continue
            if invoice_id in held:
                refused[invoice_id] = info['number'], 'plan'
            elif disputed.intersection(info['lines']):
                refused[invoice_id] = info['number'], 'disputed'
            elif processing.intersection(info['lines']):
                refused[invoice_id] = info['number'], 'processing'
            else:
                available[invoice_id] = info
        return available, refused

    @classmethod
    def held_invoices(cls, invoice_ids):
        "The invoices among invoice_ids that a waiting or active plan holds"
        pool = Pool()
        plan = cls.__table__()
        plan_line = pool.get('account.dunning.plan.line').__table__()
        cursor = Transaction().connection.cursor()
        held = set()
        for sub in chunks(invoice_ids):
            cursor.execute(*plan_line.join(plan,
                    condition=plan.id == plan_line.plan).select(
                    plan_line.invoice,
                    where=in_(plan_line.invoice, sub)
                    & plan.state.in_(HELD),
                    group_by=[plan_line.invoice]))
            held.update(i for i, in cursor)
        return held

    @classmethod
    def party_segment(cls, company, party, procedure, date):
        """The segment the last run gave the party; one the run never saw
        is classified now, as the run would"""
        pool = Pool()
        Segment = pool.get('account.dunning.segment')
        Run = pool.get('account.dunning.run')
        rows = Segment.search([
                ('company', '=', company.id),
                ('party', '=', party.id),
                ], limit=1)
        if rows:
            return rows[0].segment
        context = Run.load_context(company, date)
        (facts,), _ = Run.load(company, date, [party.id], context)
        return classify(facts.history, date,
            context['policies'][procedure.id].thresholds, facts.pin).segment

    @classmethod
    def refusal(cls, company, party, procedure, date):
        "Why the party may propose no plan at all; None when it may"
        if procedure is None or not procedure.plan_allowed:
            return gettext('dunning_portal.msg_plan_disabled')
        segment = cls.party_segment(company, party, procedure, date)
        if segment not in procedure.plan_limits.segments:
            return gettext('dunning_portal.msg_plan_segment')

    @classmethod
    def prepare(cls, company, party, invoice_ids, date, count=1, months=0,
            days=0, new_date=None):
        """Return (plan, problems): the plan, not saved, that the party
        would accept on date for the invoices (all its open ones when
        none is given) in count instalments every months and days, or on
        new_date, and the texts saying why the policy refuses it.
        """
        pool = Pool()
        Currency = pool.get('currency.currency')
        Instalment = pool.get('account.dunning.plan.instalment')
        PlanLine = pool.get('account.dunning.plan.line')
        with Transaction().set_context(company=company.id):
            procedure = party.dunning_procedure
        if procedure is None:
            return None, [gettext('dunning_portal.msg_plan_disabled')]
        available, refused = cls.plannable(company, party, date)
        problems = []
        for invoice_id in invoice_ids:
            if invoice_id in refused:
                number, reason = refused[invoice_id]
                problems.append(gettext(
                        f'dunning_portal.msg_plan_invoice_{reason}',
                        invoice=number))
            elif invoice_id not in available:
                # Paid, not the customer's or unknown: all alike.
                problems.append(gettext(
                        'dunning_portal.msg_plan_invoice_not_open'))
        chosen = [available[i] for i in (invoice_ids or available)
            if i in available]
        if not chosen:
            return None, problems or [
                gettext('dunning_portal.msg_plan_no_invoice')]
        if len({i['currency'] for i in chosen}) > 1:
            problems.append(gettext('dunning_portal.msg_plan_currencies'))
            return None, problems
        currency = Currency(chosen[0]['currency'])
        chosen.sort(key=lambda i: (i['maturity_date'] or date, i['id']))
        total = sum((i['amount'] for i in chosen), Decimal(0))
        limits = procedure.plan_limits
        segment = cls.party_segment(company, party, procedure, date)
        proposal = rules.propose(total, count, date, limits,
            currency.rounding, segment, months=months, days=days,
            new_date=new_date)
        verdict = rules.check(proposal, limits)
        problems.extend(
            cls.problem_text(p, currency) for p in verdict.problems)

        levels = cls.levels_reached(
            [l for i in chosen for l in i['lines']])
        plan = cls(company=company, party=party, procedure=procedure,
            currency=currency, total=total, date=date, state='proposed',
            approval=verdict.approval)
        plan.lines = [PlanLine(line=line_id, invoice=info['id'],
                amount=amount, level=levels.get(line_id))
            for info in chosen for line_id, amount in info['lines'].items()]
        plan.instalments = [
            Instalment(number=number, date=when, amount=amount)
            for number, (when, amount) in enumerate(
                proposal.instalments, 1)]
        plan.resume_level = max(levels.values(), key=lambda l: (
                l.effective_offset, l.sequence or 0, l.id), default=None)
        return plan, problems

    @classmethod
    def problem_text(cls, problem, currency):
        pool = Pool()
        Lang = pool.get('ir.lang')
        lang = Lang.get()

        def show(value):
            if isinstance(value, Decimal):
                return lang.currency(value, currency)
            if isinstance(value, dt.date):
                return lang.strftime(value)
            return value
        return gettext(f'dunning_portal.msg_plan_{problem.code}',
            limit=show(problem.limit), value=show(problem.value))

    @classmethod
    def levels_reached(cls, line_ids):
        "{line id: level} of the lines the reminders already took somewhere"
        pool = Pool()
        Dunning = pool.get('account.dunning')
        Level = pool.get('account.dunning.level')
        dunning = Dunning.__table__()
        cursor = Transaction().connection.cursor()
        reached = {}
        for sub in chunks(line_ids):
            cursor.execute(*dunning.select(dunning.line, dunning.level,
                    where=in_(dunning.line, sub) & (dunning.level != Null)))
            reached.update(cursor)
        levels = {l.id: l for l in Level.browse(list(set(reached.values())))}
        return {line_id: levels[level_id]
            for line_id, level_id in reached.items()}

    @classmethod
    def accept(cls, plans, user=None, address=None, user_agent=None):
        """The customer accepts the plans: they start, or wait for an
        accountant when their total needs it"""
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        now = dt.datetime.now()
        cls.write(plans, {
                'accepted_at': now,
                'accepted_by': user.id if user else None,
                'accepted_address': address,
                'accepted_user_agent': user_agent,
                })
        proof = gettext('dunning_portal.msg_plan_acceptance_proof',
            user=(user.email or user.id) if user else '',
            address=address or '', user_agent=user_agent or '',
            time=now.replace(tzinfo=dt.timezone.utc).isoformat(
                timespec='seconds'))
        Audit.record([Audit.entry('plan_accepted', party=p.party,
                    lines=[l.line for l in p.lines], amount=p.total,
                    date=p.date, reason=proof) for p in plans])
        cls.wait([p for p in plans if p.approval])
        cls.activate([p for p in plans if not p.approval])

    @classmethod
    @Workflow.transition('waiting')
    def wait(cls, plans):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('active')
    def approve(cls, plans):
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        Date = pool.get('ir.date')
        cls.write(plans, {
                'approved_by': Transaction().user,
                'approved_at': dt.datetime.now(),
                })
        Audit.record([Audit.entry('plan_approved', party=p.party,
                    lines=[l.line for l in p.lines], amount=p.total,
                    date=Date.today()) for p in plans])
        cls.reschedule(plans)

    @classmethod
    @Workflow.transition('active')
    def activate(cls, plans):
        cls.reschedule(plans)

    @classmethod
    @ModelView.button
    @Workflow.transition('cancelled')
    def cancel(cls, plans):
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        Date = pool.get('ir.date')
        today = Date.today()
        cls.write(plans, {'ended': today})
        Audit.record([Audit.entry('plan_cancelled', party=p.party,
                    lines=[l.line for l in p.lines], amount=p.total,
                    date=today) for p in plans])

    @classmethod
    def reschedule(cls, plans):
        """Replace the receivable lines of each plan by one line per
        instalment and invoice, due on the instalment's date, with
        Tryton's rescheduling: a move per invoice, posted, the old lines
        reconciled with it. The instalments pay the oldest invoice first.
        """
        pool = Pool()
        Move = pool.get('account.move')
        InstalmentLine = pool.get(
            'account.dunning.plan.instalment-account.move.line')
        Audit = pool.get('account.dunning.audit')
        for plan in plans:
            # Paid or rescheduled while the plan waited for approval.
            if any(l.line.reconciliation for l in plan.lines):
                raise ValidationError(gettext(
                        'dunning_portal.msg_plan_lines_changed',
                        plan=plan.rec_name))
        with without_check_access():
            links, moves, entries = cls._reschedule(plans)
            Move.post(moves)
            InstalmentLine.create(links)
        Audit.record(entries)

    @classmethod
    def _reschedule(cls, plans):
        pool = Pool()
        Reschedule = pool.get('account.move.line.reschedule', type='wizard')
        Term = pool.get('account.move.line.reschedule.term')
        Audit = pool.get('account.dunning.audit')
        Date = pool.get('ir.date')
        links, moves, entries = [], [], []
        for plan in plans:
            by_invoice = defaultdict(list)
            for plan_line in plan.lines:
                by_invoice[plan_line.invoice].append(plan_line)
            debts = sorted(by_invoice.items(), key=lambda d: (
                    min(l.line.maturity_date or plan.date for l in d[1]),
                    d[0].id))
            instalments = list(plan.instalments)
            parts = rules.allocate(
                [(invoice, sum(l.amount for l in plan_lines))
                    for invoice, plan_lines in debts],
                [(i.date, i.amount) for i in instalments])
            new_lines = []
            for invoice, plan_lines in debts:
                lines = [l.line for l in plan_lines]
                move, _ = Reschedule.reschedule_lines(lines,
                    invoice.move.journal, [
                        Term(date=when, amount=amount,
                            currency=plan.currency)
                        for _, when, amount in parts[invoice]])
                move.origin = invoice
                move.description = gettext(
                    'dunning_portal.msg_plan_move_description',
                    plan=plan.rec_name)
                move.save()
                moves.append(move)
                instalment_of = {when: instalments[index]
                    for index, when, _ in parts[invoice]}
                for line in move.lines:
                    if line.maturity_date in instalment_of:
                        links.append({
                                'instalment': (
                                    instalment_of[line.maturity_date].id),
                                'line': line.id,
                                'invoice': invoice.id,
                                })
                        new_lines.append(line)
            entries.append(Audit.entry('plan_rescheduled', party=plan.party,
                    lines=new_lines, amount=plan.total, date=Date.today(),
                    reason=plan.schedule_text()))
        return links, moves, entries

    @classmethod
    def settle(cls, company, date):
        """End the active plans of company on date: completed when every
        instalment is paid, broken when one is still unpaid the policy's
        days after its date. Set-based: a few queries for all the plans.
        """
        pool = Pool()
        Procedure = pool.get('account.dunning.procedure')
        Audit = pool.get('account.dunning.audit')
        plan = cls.__table__()
        instalment = pool.get('account.dunning.plan.instalment').__table__()
        relation = pool.get(
            'account.dunning.plan.instalment-account.move.line').__table__()
        line = pool.get('account.move.line').__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*plan.join(instalment,
                condition=instalment.plan == plan.id).join(relation,
                condition=relation.instalment == instalment.id).join(line,
                condition=line.id == relation.line).select(
                plan.id, plan.procedure, instalment.date, line.reconciliation,
                where=(plan.company == company.id)
                & (plan.state == 'active')))
        procedures, unpaid = {}, defaultdict(set)
        for plan_id, procedure_id, due, reconciliation in cursor:
            procedures[plan_id] = procedure_id
            if reconciliation is None:
                unpaid[plan_id].add(due)
        limits = {p.id: p.plan_limits
            for p in Procedure.browse(list(set(procedures.values())))}
        completed = cls.browse([p for p in procedures if not unpaid[p]])
        broken = cls.browse([p for p in procedures
                if rules.broken(unpaid[p], date, limits[procedures[p]])])
        # Whoever starts the run, ending the plans is the policy's doing.
        with without_check_access():
            if completed:
                cls.complete(completed)
            if broken:
                cls.break_(broken)
            for plans in (completed, broken):
                if plans:
                    cls.write(plans, {'ended': date})
        Audit.record([Audit.entry('plan_completed', party=p.party,
                    amount=p.total, date=date) for p in completed]
            + [Audit.entry('plan_broken', party=p.party, amount=p.total,
                    date=date, reason=gettext(
                        'dunning_portal.msg_plan_broken_reason',
                        due=min(unpaid[p.id]).isoformat(),
                        level=(p.resume_level.rec_name
                            if p.resume_level else '-')))
                for p in broken])
        cls.tell_broken(company, broken, unpaid, date)
        return completed, broken

    @classmethod
    @Workflow.transition('completed')
    def complete(cls, plans):
        pass

    @classmethod
    @Workflow.transition('broken')
    def break_(cls, plans):
        pass

    @classmethod
    def tell_broken(cls, company, plans, unpaid, date):
        """Queue a message in the outbox telling each customer their plan
        broke, by e-mail and in the portal where they can be reached"""
        pool = Pool()
        Run = pool.get('account.dunning.run')
        Message = pool.get('account.dunning.message')
        Configuration = pool.get('account.configuration')
        Lang = pool.get('ir.lang')
        if not plans:
            return
        party_ids = sorted({p.party.id for p in plans})
        recipients = Run.load_recipients(company, party_ids)
        withdrawn = Run.load_withdrawn(company, party_ids)
        config = Configuration(1)
        channels = dict(Message.get_channels())
        messages = []
        for plan in plans:
            party = plan.party
            reach = recipients.get(party.id, {})
            code = party.lang.code if party.lang else 'en'
            with Transaction().set_context(language=code):
                lang = Lang.get(code)
                remaining = sum((l.amount for i in plan.instalments
                        for l in i.lines if not l.reconciliation),
                    Decimal(0))
                values = {
                    'customer': party.rec_name,
                    'company': company.rec_name,
                    'accepted': lang.strftime(plan.date),
                    'due': lang.strftime(min(unpaid[plan.id])),
                    'remaining': lang.currency(remaining, company.currency),
                    'link': link_url(config, party.id) or '',
                    'contact': config.dunning_contact or company.rec_name,
                    }
                subject = gettext(
                    'dunning_portal.msg_plan_broken_subject', **values)
                body = gettext('dunning_portal.msg_plan_broken_body',
                    **values)
            for channel in BROKEN_CHANNELS:
                if (channel in channels and reach.get(channel)
                        and channel not in withdrawn.get(party.id, ())):
                    messages.append({
                            'company': company.id,
                            'party': party.id,
                            'channel': channel,
                            'date': date,
                            'recipient': reach[channel],
                            'subject': subject,
                            'body': body,
                            'amount': remaining,
                            'key': f'{party.id}:{channel}:plan-{plan.id}:'
                            'broken',
                            'state': 'queued',
                            'planned_at': dt.datetime.now(),
                            })
        with without_check_access():
            Message.create(messages)

    @classmethod
    def plan_facts(cls, company, party_ids, date, start):
        """Return ({line id: plan}, {party id: count}) as the run's
        ``load_plans`` does: the open lines of the parties' plans, paused
        while the plan holds them or back at the plan's level once it
        broke, on date; and the plans each party broke since start.

        An active plan that breaks on date counts as broken already, so a
        dry run decides what the run will.
        """
        pool = Pool()
        Procedure = pool.get('account.dunning.procedure')
        plan = cls.__table__()
        instalment = pool.get('account.dunning.plan.instalment').__table__()
        relation = pool.get(
            'account.dunning.plan.instalment-account.move.line').__table__()
        plan_line = pool.get('account.dunning.plan.line').__table__()
        line = pool.get('account.move.line').__table__()
        invoice = pool.get('account.invoice').__table__()
        cursor = Transaction().connection.cursor()
        mine = (plan.company == company.id) & in_(plan.party, party_ids)

        cursor.execute(*plan
            .join(instalment, condition=instalment.plan == plan.id)
            .join(relation, condition=relation.instalment == instalment.id)
            .join(line, condition=line.id == relation.line)
            .join(invoice, 'LEFT', condition=invoice.id == relation.invoice)
            .select(plan.id, plan.party, plan.state, plan.procedure,
                plan.resume_level, instalment.number, instalment.date,
                line.id, invoice.number,
                where=mine & plan.state.in_(['active', 'broken'])
                & (line.reconciliation == Null)))
        rows = cursor.fetchall()
        unpaid, sizes = defaultdict(set), {}
        for row in rows:
            unpaid[row[0]].add(row[6])
        for sub in chunks(sorted(unpaid)):
            cursor.execute(*instalment.select(
                    instalment.plan, Count(instalment.id),
                    where=in_(instalment.plan, sub),
                    group_by=[instalment.plan]))
            sizes.update(cursor)
        limits = {p.id: p.plan_limits
            for p in Procedure.browse(list({r[3] for r in rows}))}
        breaking = {plan_id for plan_id, state, procedure_id in {
                (r[0], r[2], r[3]) for r in rows}
            if state == 'active'
            and rules.broken(unpaid[plan_id], date, limits[procedure_id])}
        facts, broken = {}, defaultdict(int)
        for (plan_id, party_id, state, _, resume_level, number, _, line_id,
                invoice_number) in rows:
            label = gettext('dunning_portal.msg_plan_line_label',
                invoice=invoice_number or '', number=number,
                count=sizes[plan_id])
            if state == 'active' and plan_id not in breaking:
                facts[line_id] = {'paused': True, 'label': label}
            else:
                facts[line_id] = {
                    'resume_level': resume_level, 'label': label}
        for plan_id, party_id in {(r[0], r[1]) for r in rows
                if r[0] in breaking}:
            broken[party_id] += 1

        cursor.execute(*plan_line.join(plan,
                condition=plan.id == plan_line.plan).select(
                plan_line.line, where=mine & (plan.state == 'waiting')))
        for line_id, in cursor:
            facts[line_id] = {'paused': True}

        cursor.execute(*plan.select(plan.party, Count(plan.id),
                where=mine & (plan.state == 'broken') & (plan.ended > start),
                group_by=[plan.party]))
        for party_id, count in cursor:
            broken[party_id] += count
        return facts, dict(broken)


class PlanLine(ModelSQL, ModelView):
    "Dunning Payment Plan Line"
    __name__ = 'account.dunning.plan.line'
    plan = fields.Many2One('account.dunning.plan', "Plan", required=True,
        ondelete='CASCADE')
    line = fields.Many2One('account.move.line', "Line", required=True,
        ondelete='RESTRICT', readonly=True)
    invoice = fields.Many2One('account.invoice', "Invoice", readonly=True)
    amount = Monetary("Amount", currency='currency', digits='currency',
        required=True, readonly=True)
    currency = fields.Function(fields.Many2One(
            'currency.currency', "Currency"), 'on_change_with_currency')
    level = fields.Many2One('account.dunning.level', "Level Reached",
        readonly=True,
        help="The level the line's reminders had reached when the plan "
        "was proposed.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.plan, Index.Equality())),
                Index(t, (t.line, Index.Equality())),
                Index(t, (t.invoice, Index.Equality())),
                })

    @fields.depends('plan', '_parent_plan.currency')
    def on_change_with_currency(self, name=None):
        return self.plan.currency if self.plan else None


class Instalment(ModelSQL, ModelView):
    "Dunning Payment Plan Instalment"
    __name__ = 'account.dunning.plan.instalment'
    plan = fields.Many2One('account.dunning.plan', "Plan", required=True,
        ondelete='CASCADE')
    number = fields.Integer("Number", required=True, readonly=True)
    date = fields.Date("Date", required=True, readonly=True)
    amount = Monetary("Amount", currency='currency', digits='currency',
        required=True, readonly=True)
    currency = fields.Function(fields.Many2One(
            'currency.currency', "Currency"), 'on_change_with_currency')
    lines = fields.Many2Many(
        'account.dunning.plan.instalment-account.move.line', 'instalment',
        'line', "Lines", readonly=True,
        help="The receivable lines due on the instalment's date, one per "
        "invoice it pays.")
    paid = fields.Function(fields.Boolean("Paid"), 'get_paid')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.plan, Index.Equality())))
        cls._order = [('plan', 'ASC'), ('number', 'ASC'), ('id', 'ASC')]

    @fields.depends('plan', '_parent_plan.currency')
    def on_change_with_currency(self, name=None):
        return self.plan.currency if self.plan else None

    @classmethod
    def get_paid(cls, instalments, name):
        """Paid when rescheduled and every line of it is reconciled; one
        query for all the instalments"""
        pool = Pool()
        relation = pool.get(
            'account.dunning.plan.instalment-account.move.line').__table__()
        line = pool.get('account.move.line').__table__()
        cursor = Transaction().connection.cursor()
        lines, open_ = set(), set()
        for sub in chunks([i.id for i in instalments]):
            cursor.execute(*relation.join(line,
                    condition=line.id == relation.line).select(
                    relation.instalment, line.reconciliation,
                    where=in_(relation.instalment, sub)))
            for instalment_id, reconciliation in cursor:
                lines.add(instalment_id)
                if reconciliation is None:
                    open_.add(instalment_id)
        return {i.id: i.id in lines and i.id not in open_
            for i in instalments}


class InstalmentLine(ModelSQL):
    "Dunning Payment Plan Instalment - Move Line"
    __name__ = 'account.dunning.plan.instalment-account.move.line'
    instalment = fields.Many2One('account.dunning.plan.instalment',
        "Instalment", required=True, ondelete='CASCADE')
    line = fields.Many2One('account.move.line', "Line", required=True,
        ondelete='RESTRICT')
    invoice = fields.Many2One('account.invoice', "Invoice")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.instalment, Index.Equality())),
                Index(t, (t.line, Index.Equality())),
                })


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    @classmethod
    def portal_statuses(cls, party, invoices, date):
        "An invoice a waiting or active plan holds is 'plan'"
        pool = Pool()
        Plan = pool.get('account.dunning.plan')
        statuses = super().portal_statuses(party, invoices, date)
        for invoice_id in Plan.held_invoices([i['id'] for i in invoices]):
            statuses[invoice_id] = 'plan'
        return statuses


class Audit(metaclass=PoolMeta):
    __name__ = 'account.dunning.audit'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        selection = list(cls.kind.selection)
        selection.extend(k for k in PLAN_KINDS if k not in selection)
        cls.kind.selection = selection


class Run(metaclass=PoolMeta):
    __name__ = 'account.dunning.run'

    @classmethod
    def execute(cls, date, send=True, batch_size=None):
        """End the plans first, in their own transaction: a broken plan's
        lines resume in this run, a completed one's are paid"""
        pool = Pool()
        Company = pool.get('company.company')
        Plan = pool.get('account.dunning.plan')
        company = Company(Transaction().context['company'])
        cls.check_date(company, date)
        Plan.settle(company, date)
        cls._commit()
        return super().execute(date, send=send, batch_size=batch_size)

    @classmethod
    def load_plans(cls, company, party_ids, date, context):
        pool = Pool()
        Plan = pool.get('account.dunning.plan')
        return Plan.plan_facts(company, party_ids, date,
            cls.history_start(date, context))
