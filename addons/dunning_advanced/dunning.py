"""The dunning queue and the daily run: load facts, decide, apply, send."""
import datetime as dt
import gc
import multiprocessing
import os
from collections import Counter, defaultdict
from contextlib import contextmanager
from decimal import Decimal

from sql import Literal, Null
from sql.conditionals import Case, Coalesce
from sql.aggregate import Count
from sql.operators import Exists

from trytond import backend, config
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.account.exceptions import PeriodNotFoundError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import bulk, engine
from .bulk import chunks, in_
from .engine import (
    BLOCK_ORDERING, CALL_TASK, COLLECTION, EMAIL, FEE, INTEREST, LETTER,
    NO_CONTACT_TASK, SKIP_COVERED_BY_CREDIT, SKIP_DISPUTED, SKIP_IN_PLAN,
    SKIP_NO_PROCEDURE, SKIP_NOT_REACHED, SKIP_PAYMENT_PROCESSING,
    UNBLOCK_ORDERING, Decisions, History, OpenLine, OverdueItem, PaidItem,
    PartyFacts, Pin)
from .compliance import country_zones
from .exceptions import RunAheadError
from .segment import describe

PROCESSING_PAYMENT_STATES = ('submitted', 'approved', 'processing')
# What the dry run says of each action and of each reason to leave a line
ACTION_WORDS = {
    FEE: 'dunning_advanced.msg_dry_run_fee',
    INTEREST: 'dunning_advanced.msg_dry_run_interest',
    BLOCK_ORDERING: 'dunning_advanced.msg_dry_run_block_ordering',
    UNBLOCK_ORDERING: 'dunning_advanced.msg_dry_run_unblock_ordering',
    COLLECTION: 'dunning_advanced.msg_dry_run_collection',
    CALL_TASK: 'dunning_advanced.msg_dry_run_call_task',
    NO_CONTACT_TASK: 'dunning_advanced.msg_dry_run_no_contact_task',
    }
SKIP_WORDS = {
    SKIP_DISPUTED: 'dunning_advanced.msg_dry_run_skip_disputed',
    SKIP_PAYMENT_PROCESSING:
        'dunning_advanced.msg_dry_run_skip_payment_processing',
    SKIP_COVERED_BY_CREDIT:
        'dunning_advanced.msg_dry_run_skip_covered_by_credit',
    SKIP_NOT_REACHED: 'dunning_advanced.msg_dry_run_skip_not_reached',
    SKIP_NO_PROCEDURE: 'dunning_advanced.msg_dry_run_skip_no_procedure',
    SKIP_IN_PLAN: 'dunning_advanced.msg_dry_run_skip_in_plan',
    }


@contextmanager
def collector_paused():
    """Pause the cyclic garbage collector for one batch.

    A batch allocates a few hundred thousand short-lived rows, facts and
    decisions that form no cycles: the collections they would trigger only
    walk them again and again, a sixth of the run's time. Reference counting
    still frees them when the batch ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Move(metaclass=PoolMeta):
    __name__ = 'account.move'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        # The run leaves out the lines of the few moves not posted; without
        # this index it reads the move of every open line to find them.
        cls._sql_indexes.add(
            Index(t, (t.id, Index.Range()), where=t.state != 'posted'))


class Dunning(metaclass=PoolMeta):
    __name__ = 'account.dunning'
    block_reason = fields.Char(
        "Block Reason",
        states={'invisible': ~Eval('blocked', False)},
        help="Why the customer disputes the line.")
    block_until = fields.Date(
        "Blocked until",
        states={'invisible': ~Eval('blocked', False)},
        help="The dunning resumes after this date; empty for no end.")
    messages = fields.Many2Many(
        'account.dunning.message-account.dunning', 'dunning', 'message',
        "Messages", readonly=True)
    # Tryton's age is a TimeDelta that sao shows as "3w 1d" or "00:00"
    age_days = fields.Function(fields.Char("Age",
            states={'invisible': Eval('state') == 'draft'},
            help="How many days the dunning has been at the level."),
        'get_age_days')
    # Not Monetary: sao would show the currency symbol alone in the rows
    # without fee.
    fee_amount = fields.Function(fields.Numeric(
            "Fee", digits='currency',
            help="The fees the levels reached charged on the line."),
        'get_fee_amount')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'dispute': {
                    'invisible': Eval('blocked', False),
                    'depends': ['blocked'],
                    },
                'lift_dispute': {
                    'invisible': ~Eval('blocked', False),
                    'depends': ['blocked'],
                    },
                })

    def get_age_days(self, name):
        if self.age is None:
            return None
        if self.age.days == 1:
            return gettext('dunning_advanced.msg_age_day')
        return gettext('dunning_advanced.msg_age_days', days=self.age.days)

    @classmethod
    def order_age_days(cls, tables):
        return cls.order_age(tables)

    def get_fee_amount(self, name):
        fees = [f.amount for f in self.fees if f.currency == self.currency]
        if fees:
            return self.currency.round(sum(fees))

    @classmethod
    @ModelView.button_action('dunning_advanced.wizard_dispute')
    def dispute(cls, dunnings):
        pass

    @classmethod
    @ModelView.button
    def lift_dispute(cls, dunnings):
        cls.write(dunnings, {
                'blocked': False,
                'block_reason': None,
                'block_until': None,
                })

    @classmethod
    def write(cls, *args):
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        entries = []
        actions = iter(args)
        for dunnings, values in zip(actions, actions):
            if 'blocked' in values:
                kind = 'dispute' if values['blocked'] else 'dispute_lifted'
            elif values.keys() & {'level', 'block_reason', 'block_until'}:
                kind = 'manual'
            else:
                continue
            reason = values.get('block_reason') or ', '.join(
                f'{k}={v}' for k, v in sorted(values.items()))
            entries.extend(Audit.entry(
                    kind, party=d.party, level=d.level, lines=[d.line],
                    reason=reason) for d in dunnings)
        super().write(*args)
        Audit.record(entries)


class DisputeStart(ModelView):
    "Dispute Dunning"
    __name__ = 'account.dunning.dispute.start'
    reason = fields.Char("Reason", required=True)
    until = fields.Date("Until",
        help="Resume the dunning after this date; empty for no end.")


class Dispute(Wizard):
    "Dispute Dunning"
    __name__ = 'account.dunning.dispute'
    start = StateView('account.dunning.dispute.start',
        'dunning_advanced.dunning_dispute_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Block", 'block', 'tryton-ok', default=True),
            ])
    block = StateTransition()

    def transition_block(self):
        self.model.write(list(self.records), {
                'blocked': True,
                'block_reason': self.start.reason,
                'block_until': self.start.until,
                })
        return 'end'


class Run(ModelSQL, ModelView):
    "Dunning Run"
    __name__ = 'account.dunning.run'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    date = fields.Date("Date", required=True, readonly=True)
    state = fields.Selection([
            ('running', "Running"),
            ('done', "Done"),
            ], "State", readonly=True)
    started_at = fields.Timestamp("Started at", readonly=True)
    finished_at = fields.Timestamp("Finished at", readonly=True)
    parties = fields.Integer("Parties", readonly=True)
    changes = fields.Integer("Lines at a new Level", readonly=True)
    messages = fields.Integer("Messages", readonly=True)
    actions = fields.Integer("Actions", readonly=True)

    batch_size = 1000

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('started_at', 'DESC'), ('id', 'DESC')]

    @classmethod
    def run_daily(cls):
        "Cron entry point: the run of today for the context company"
        pool = Pool()
        Date = pool.get('ir.date')
        cls.execute(Date.today())

    @classmethod
    def check_date(cls, company, date):
        pool = Pool()
        Period = pool.get('account.period')
        Lang = pool.get('ir.lang')
        try:
            period = Period.find(company, date=date, test_state=False)
        except PeriodNotFoundError:
            raise ValidationError(gettext(
                    'dunning_advanced.msg_run_no_period',
                    date=Lang.get().strftime(date),
                    company=company.rec_name))
        if period.state != 'open':
            raise ValidationError(gettext(
                    'dunning_advanced.msg_run_closed_period',
                    date=Lang.get().strftime(date),
                    period=period.rec_name))

    @classmethod
    def check_not_ahead(cls, company, date):
        """A real run acts on the customers at once: dated after today it
        would hand over, charge and write for days yet to come"""
        pool = Pool()
        Date = pool.get('ir.date')
        Lang = pool.get('ir.lang')
        with Transaction().set_context(company=company.id):
            today = Date.today()
        if date > today:
            lang = Lang.get()
            raise RunAheadError(gettext(
                    'dunning_advanced.msg_run_ahead',
                    date=lang.strftime(date), today=lang.strftime(today),
                    company=company.rec_name))

    @classmethod
    def validate_fields(cls, runs, field_names):
        super().validate_fields(runs, field_names)
        if field_names & {'company', 'date'}:
            for run in runs:
                cls.check_not_ahead(run.company, run.date)

    @classmethod
    def execute(cls, date, send=True, batch_size=None):
        """Run the dunning of the context company for date.

        Each batch of parties is loaded, decided and written in its own
        transaction, so a run killed at any point and started again finishes
        the work exactly once: lines already at their level decide nothing
        new and the outbox key refuses a second message.
        """
        pool = Pool()
        Company = pool.get('company.company')
        Message = pool.get('account.dunning.message')
        transaction = Transaction()
        company = Company(transaction.context['company'])
        cls.check_not_ahead(company, date)
        cls.check_date(company, date)

        run = cls(company=company, date=date, state='running',
            started_at=dt.datetime.now(), parties=0, changes=0, messages=0,
            actions=0)
        run.save()
        cls.lift_expired_disputes(company, date)
        cls._commit()
        context = cls.load_context(company, date)
        batches = cls.party_batches(
            company, batch_size or cls.batch_size, date, context)
        if cls._split():
            cls._execute_split(run, company, date, batches, context)
        else:
            for party_ids in batches:
                with collector_paused():
                    facts, details = cls.load(
                        company, date, party_ids, context)
                    decisions = cls.decide(facts, date, context)
                    run.count(run.apply(decisions, details, context))
                run.save()
                cls._commit()
        run.state = 'done'
        run.finished_at = dt.datetime.now()
        run.save()
        cls._commit()
        if send:
            Message.enqueue(Message.search([
                        ('company', '=', company.id),
                        Message.due_domain(context['now'].astimezone(
                                dt.timezone.utc).replace(tzinfo=None)),
                        ], order=[('id', 'ASC')]))
        return run

    @staticmethod
    def decide(facts, date, context):
        return engine.decide(facts, context['policies'], date,
            context['rules'], context['now'])

    @classmethod
    def _split(cls):
        """Whether batches are shared out to processes of their own.

        The engine's Python holds one core; PostgreSQL and more processes
        use the others. Tests run in one transaction that is never
        committed, which another connection could not see.
        """
        return (backend.name == 'postgresql' and not Pool().test
            and cls.processes() > 1)

    @staticmethod
    def processes():
        "How many processes run the batches: one per core by default"
        return Transaction().context.get('dunning_run_processes') or (
            config.getint('dunning_advanced', 'run_processes',
                default=os.cpu_count() or 1))

    @classmethod
    def _execute_split(cls, run, company, date, batches, context):
        """Load, decide and write the batches in forked processes, each
        batch in a transaction of its own, and add up what they did.

        The batches share no party, so what one writes is never what
        another reads; a failed batch stops the run, and the run started
        again finishes the work exactly once.
        """
        transaction = Transaction()
        global _split_run
        # The children inherit these; records belong to the transaction
        # that read them, so they take only plain facts.
        _split_run = {
            'database': transaction.database.name,
            'user': transaction.user,
            'context': dict(transaction.context),
            'run': run.id, 'company': company.id, 'date': date,
            'facts': {key: context[key]
                for key in ('policies', 'default_procedure', 'rules', 'now')},
            }
        # A child's collections would write to every object it shares with
        # this process, copying the pages of the whole pool: the objects
        # alive now are left out of them.
        gc.freeze()
        try:
            with multiprocessing.get_context('fork').Pool(
                    cls.processes()) as processes:
                # The pool feeds the batches from a thread of its own,
                # which has no transaction to read them with.
                for counts in processes.imap_unordered(
                        _run_batch, list(batches)):
                    run.count(counts)
        finally:
            gc.unfreeze()
            _split_run = None
        run.save()
        transaction.commit()

    @classmethod
    def lift_expired_disputes(cls, company, date):
        "Disputes whose end date passed resume before the run decides"
        pool = Pool()
        Dunning = pool.get('account.dunning')
        Audit = pool.get('account.dunning.audit')
        dunning = Dunning.__table__()
        line = pool.get('account.move.line').__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*dunning.join(line,
                condition=line.id == dunning.line).select(
                dunning.id, dunning.line, line.party,
                where=(dunning.company == company.id)
                & (dunning.blocked == Literal(True))
                & (dunning.block_until != Null)
                & (dunning.block_until < date)))
        expired = cursor.fetchall()
        if not expired:
            return
        for sub in chunks([d for d, _, _ in expired]):
            cursor.execute(*dunning.update(
                    [dunning.blocked, dunning.block_until],
                    [Literal(False), Null],
                    where=in_(dunning.id, sub)))
        Audit.record([Audit.entry('dispute_lifted', party=party_id,
                    lines=[line_id], date=date,
                    reason=gettext('dunning_advanced.msg_dispute_expired'))
                for _, line_id, party_id in expired])

    @classmethod
    def dry_run(cls, date, batch_size=None):
        "Return the decisions the run would take, writing nothing"
        pool = Pool()
        Company = pool.get('company.company')
        company = Company(Transaction().context['company'])
        cls.check_date(company, date)
        context = cls.load_context(company, date)
        all_decisions, all_details = [], {'lines': {}, 'parties': {}}
        for party_ids in cls.party_batches(
                company, batch_size or cls.batch_size, date, context):
            facts, details = cls.load(company, date, party_ids, context)
            all_decisions.append(
                cls.decide(facts, date, context))
            for key in all_details:
                all_details[key].update(details[key])
        return Decisions(
            changes=sum((d.changes for d in all_decisions), ()),
            messages=sum((d.messages for d in all_decisions), ()),
            actions=sum((d.actions for d in all_decisions), ()),
            skipped=sum((d.skipped for d in all_decisions), ()),
            segments=sum((d.segments for d in all_decisions), ()),
            ), all_details

    @staticmethod
    def _commit():
        if not Pool().test:
            Transaction().commit()

    @classmethod
    def load_context(cls, company, date):
        "Facts shared by every batch: policies, default procedure, texts"
        pool = Pool()
        Procedure = pool.get('account.dunning.procedure')
        Configuration = pool.get('account.configuration')
        config = Configuration(1)
        default = config.get_multivalue(
            'default_dunning_procedure', company=company.id)
        rounding = company.currency.rounding
        procedures = Procedure.search([])
        rules = cls.compliance_rules(company, date)
        return {
            'policies': {p.id: p.to_policy(rounding) for p in procedures},
            'procedures': {p.id: p for p in procedures},
            'default_procedure': default.id if default else None,
            'config': config,
            'rules': rules,
            'now': cls.decision_time(company, date, rules),
            }

    @classmethod
    def _receivable_lines(cls, company, open_=True):
        "Receivable lines, open ones by default, of posted moves of company"
        pool = Pool()
        line = pool.get('account.move.line').__table__()
        move = pool.get('account.move').__table__()
        account = pool.get('account.account').__table__()
        type_ = pool.get('account.account.type').__table__()
        query = (line
            .join(account, condition=account.id == line.account)
            .join(type_, condition=type_.id == account.type))
        where = ((account.company == company.id)
            & (type_.receivable == Literal(True))
            & (line.party != Null)
            & ~Exists(move.select(move.id,
                    where=(move.id == line.move)
                    & (move.state != 'posted'))))
        if open_:
            where &= line.reconciliation == Null
        return line, query, where

    @classmethod
    def _paid_lines(cls, company, start, date):
        """Receivable lines of invoices (with a maturity date) paid in full
        after start and up to date, with the date of their payment"""
        pool = Pool()
        reconciliation = pool.get('account.move.reconciliation').__table__()
        line, query, where = cls._receivable_lines(company, open_=False)
        query = query.join(reconciliation,
            condition=reconciliation.id == line.reconciliation)
        where &= ((line.maturity_date != Null)
            & (line.debit > line.credit)
            & (reconciliation.date > start)
            & (reconciliation.date <= date))
        return line, reconciliation, query, where

    @classmethod
    def history_start(cls, date, context):
        window = max((p.thresholds.window_days
                for p in context['policies'].values()), default=0)
        return date - dt.timedelta(days=window)

    @classmethod
    def party_batches(cls, company, size, date=None, context=None):
        """The parties to decide for: those owing something, those blocked
        and, to keep their segment current, those who paid recently"""
        pool = Pool()
        party = pool.get('party.party').__table__()
        line, query, where = cls._receivable_lines(company)
        cursor = Transaction().connection.cursor()
        parties = (query.select(line.party, where=where,
                group_by=[line.party])
            | party.select(party.id,
                where=party.dunning_ordering_blocked == Literal(True)))
        if date and context:
            paid, _, paid_query, paid_where = cls._paid_lines(
                company, cls.history_start(date, context), date)
            parties |= paid_query.select(paid.party, where=paid_where,
                group_by=[paid.party])
        cursor.execute(*parties)
        party_ids = sorted({p for p, in cursor})
        for i in range(0, len(party_ids), size):
            yield party_ids[i:i + size]

    @classmethod
    def load_recipients(cls, company, party_ids):
        """Return {party id: {channel: recipient}} of the parties: where each
        channel reaches them. Channel modules add theirs."""
        pool = Pool()
        contact = pool.get('party.contact_mechanism').__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*contact.select(
                contact.party, contact.value, contact.dunning,
                contact.invoice,
                where=in_(contact.party, party_ids)
                & (contact.type == 'email')
                & (contact.active == Literal(True)),
                order_by=[contact.party, contact.sequence, contact.id]))
        emails = {}
        for party_id, value, for_dunning, for_invoice in cursor:
            rank = 0 if for_dunning else 1 if for_invoice else 2
            if party_id not in emails or rank < emails[party_id][1]:
                emails[party_id] = value, rank
        return {party_id: {EMAIL: value}
            for party_id, (value, _) in emails.items()}

    @classmethod
    def load_withdrawn(cls, company, party_ids):
        "Return {party id: channels} the parties asked not to be reached on"
        pool = Pool()
        Consent = pool.get('account.dunning.consent')
        return Consent.withdrawn_channels(party_ids)

    @classmethod
    def load_zones(cls, party_ids, parties):
        """Return {party id: time zone} of the parties without a zone of
        their own: the zone of their first address's country"""
        pool = Pool()
        address = pool.get('party.address').__table__()
        country = pool.get('country.country').__table__()
        cursor = Transaction().connection.cursor()
        without = [p for p in party_ids if not parties[p]['zone']]
        if not without:
            return {}
        cursor.execute(*address.join(country,
                condition=country.id == address.country).select(
                address.party, country.code,
                where=in_(address.party, without)
                & (address.active == Literal(True)),
                order_by=[address.party, address.sequence, address.id]))
        zones = {}
        for party_id, code in cursor:
            if party_id not in zones and code in country_zones():
                zones[party_id] = country_zones()[code]
        return zones

    @classmethod
    def load_sent(cls, company, party_ids, context):
        """Return {party id: [Sent]}: the messages of the parties the caps
        count, those sent in their window and those still to go, at the
        time they were planned for, with the lines of the deferred ones,
        which the next message takes over"""
        pool = Pool()
        Message = pool.get('account.dunning.message')
        message = Message.__table__()
        relation = pool.get(
            'account.dunning.message-account.dunning').__table__()
        dunning = pool.get('account.dunning').__table__()
        cursor = Transaction().connection.cursor()
        rules, now = context['rules'], context['now']
        since = (now - rules.window).astimezone(dt.timezone.utc).replace(
            tzinfo=None)
        cursor.execute(*message.select(
                message.id, message.party, message.channel, message.state,
                message.planned_at, message.create_date,
                where=in_(message.party, party_ids)
                & (message.company == company.id)
                & (message.channel != LETTER)
                & (((message.state == 'sent')
                        & (Coalesce(message.planned_at, message.create_date)
                            >= since))
                    | message.state.in_(['queued', 'deferred'])),
                order_by=[message.id]))
        rows = cursor.fetchall()
        deferred = [r[0] for r in rows if r[3] == 'deferred']
        lines = defaultdict(list)
        for sub in chunks(deferred):
            cursor.execute(*relation.join(dunning,
                    condition=dunning.id == relation.dunning).select(
                    relation.message, dunning.line,
                    where=in_(relation.message, sub)))
            for message_id, line_id in cursor:
                lines[message_id].append(line_id)
        sent = defaultdict(list)
        for message_id, party_id, channel, state, planned, created in rows:
            sent[party_id].append(engine.Sent(
                    id=message_id, channel=channel,
                    at=(planned or created).replace(tzinfo=dt.timezone.utc),
                    pending=state == 'deferred',
                    line_ids=tuple(sorted(lines[message_id]))))
        return sent

    @classmethod
    def load_plans(cls, company, party_ids, date, context):
        """Return ({line id: plan}, {party id: count}): what the payment
        plans of the parties say of their open lines, and how many plans
        each party broke in the look-back window.

        A plan is {'paused': True} for a line a plan holds,
        {'resume_level': level id} for a line back from a broken plan, and
        may carry a 'label' naming the line to the customer. Plans live in
        dunning_portal: without it, there are none.
        """
        return {}, {}

    @classmethod
    def load(cls, company, date, party_ids, context):
        """Return the facts of the parties and what rendering needs.

        A constant number of queries whatever the number of lines.
        """
        pool = Pool()
        Dunning = pool.get('account.dunning')
        Audit = pool.get('account.dunning.audit')
        dunning = Dunning.__table__()
        audit = Audit.__table__()
        segment = pool.get('account.dunning.segment').__table__()
        invoice = pool.get('account.invoice').__table__()
        invoice_payment = pool.get(
            'account.invoice-account.move.line').__table__()
        payment = pool.get('account.payment').__table__()
        party_procedure = pool.get(
            'party.party.dunning_procedure').__table__()
        party = pool.get('party.party').__table__()
        party_lang = pool.get('party.party.lang').__table__()
        cursor = Transaction().connection.cursor()

        line, query, where = cls._receivable_lines(company)
        where &= in_(line.party, party_ids)
        query = (query
            .join(dunning, 'LEFT', condition=dunning.line == line.id)
            .join(invoice, 'LEFT', condition=invoice.move == line.move)
            .join(invoice_payment, 'LEFT',
                condition=invoice_payment.line == line.id))
        cursor.execute(*query.select(
                line.id, line.party, line.maturity_date,
                line.debit, line.credit, line.move, line.account,
                dunning.id, dunning.level, dunning.blocked,
                dunning.block_until, invoice.id, invoice.number,
                invoice.invoice_date, invoice_payment.invoice,
                where=where,
                order_by=[line.party, line.maturity_date, line.id]))
        rows = cursor.fetchall()

        debit_ids = [r[0] for r in rows if r[3] > r[4]]
        processing = set()
        for sub in chunks(debit_ids):
            cursor.execute(*payment.select(payment.line,
                    where=in_(payment.line, sub)
                    & payment.state.in_(PROCESSING_PAYMENT_STATES)))
            processing.update(l for l, in cursor)

        cursor.execute(*party_procedure.select(
                party_procedure.party, party_procedure.dunning_procedure,
                where=in_(party_procedure.party, party_ids)))
        procedures = dict(cursor)

        cursor.execute(*party.join(party_lang, 'LEFT',
                condition=party_lang.party == party.id).select(
                party.id, party.name, party_lang.lang,
                party.dunning_ordering_blocked,
                party.dunning_segment_pin, party.dunning_segment_pin_until,
                party.dunning_segment_pin_reason, party.dunning_timezone,
                where=in_(party.id, party_ids)))
        parties = {r[0]: {
                'name': r[1], 'lang': r[2], 'blocked': bool(r[3]),
                'pin': Pin(r[4], r[5]) if r[4] else None,
                'pin_reason': r[6], 'zone': r[7],
                'procedure': procedures.get(
                    r[0], context['default_procedure']),
                'segment': None}
            for r in cursor}

        cursor.execute(*segment.select(segment.party, segment.segment,
                where=(segment.company == company.id)
                & in_(segment.party, party_ids)))
        for party_id, party_segment in cursor:
            parties[party_id]['segment'] = party_segment

        start = cls.history_start(date, context)
        paid, reconciliation, paid_query, paid_where = cls._paid_lines(
            company, start, date)
        cursor.execute(*paid_query.select(
                paid.party, paid.debit, paid.credit, paid.maturity_date,
                reconciliation.date,
                where=paid_where & in_(paid.party, party_ids)))
        paid_items = defaultdict(list)
        for party_id, debit, credit, maturity, paid_date in cursor:
            paid_items[party_id].append(PaidItem(
                    Decimal(debit) - Decimal(credit), maturity, paid_date))

        cursor.execute(*audit.select(audit.party, Count(audit.id),
                where=(audit.kind == 'dispute')
                & in_(audit.party, party_ids)
                & (audit.timestamp > dt.datetime.combine(start, dt.time())),
                group_by=[audit.party]))
        disputes = dict(cursor)
        plans, broken_plans = cls.load_plans(
            company, party_ids, date, context)

        recipients = cls.load_recipients(company, party_ids)
        withdrawn = cls.load_withdrawn(company, party_ids)
        for party_id, info in parties.items():
            info['recipients'] = recipients.get(party_id, {})
            info['email'] = info['recipients'].get(EMAIL)
            info['withdrawn'] = withdrawn.get(party_id, frozenset())
        for party_id, zone in cls.load_zones(party_ids, parties).items():
            parties[party_id]['zone'] = zone
        sent = cls.load_sent(company, party_ids, context)

        lines, credits, by_invoice = {}, defaultdict(Decimal), {}
        paid_on_invoice = defaultdict(Decimal)
        for (line_id, party_id, maturity, debit, credit, move_id, account_id,
                dunning_id, level_id, blocked, block_until, invoice_id,
                number, invoice_date, paid_invoice) in rows:
            # Subtract in Python: SQLite would compute it as a float.
            amount = Decimal(debit) - Decimal(credit)
            if amount < 0:
                if paid_invoice:
                    paid_on_invoice[paid_invoice] -= amount
                else:
                    credits[party_id] -= amount
                continue
            if maturity is None:
                continue
            plan = plans.get(line_id, {})
            lines[line_id] = {
                'id': line_id, 'party': party_id, 'maturity_date': maturity,
                'amount': amount, 'account': account_id,
                'dunning': dunning_id, 'level': level_id,
                # A dispute whose end date passed no longer holds the line.
                'disputed': bool(blocked) and not (
                    block_until and block_until < date),
                'invoice': invoice_id, 'number': number or plan.get('label'),
                'invoice_date': invoice_date,
                'paused': plan.get('paused', False),
                'resume_level': plan.get('resume_level'),
                }
            if invoice_id:
                by_invoice.setdefault(invoice_id, []).append(lines[line_id])
        # A partial payment reduces its invoice's earliest instalments first.
        for invoice_id, paid in paid_on_invoice.items():
            for info in by_invoice.get(invoice_id, []):
                used = min(paid, info['amount'])
                info['amount'] -= used
                paid -= used
            if paid:
                party_id = by_invoice[invoice_id][0]['party'] if (
                    invoice_id in by_invoice) else None
                if party_id:
                    credits[party_id] += paid

        per_party = defaultdict(list)
        for info in lines.values():
            if info['amount'] <= 0:
                continue
            per_party[info['party']].append(info)
        facts = []
        for party_id in party_ids:
            info = parties[party_id]
            procedure = info['procedure']
            reachable = {LETTER} | (
                set(info['recipients']) - set(info['withdrawn']))
            facts.append(PartyFacts(
                    party_id=party_id,
                    lines=tuple(OpenLine(
                            id=l['id'], party_id=party_id,
                            procedure_id=procedure,
                            maturity_date=l['maturity_date'],
                            amount=l['amount'], level_id=l['level'],
                            disputed=l['disputed'],
                            payment_processing=l['id'] in processing,
                            paused=l['paused'],
                            resume_level_id=l['resume_level'])
                        for l in per_party[party_id]),
                    credit=credits[party_id],
                    reachable=frozenset(reachable),
                    ordering_blocked=info['blocked'],
                    procedure_id=procedure,
                    history=History(
                        paid=tuple(paid_items[party_id]),
                        open=tuple(
                            OverdueItem(l['amount'], l['maturity_date'])
                            for l in per_party[party_id]
                            if not l['disputed']),
                        disputes=disputes.get(party_id, 0),
                        broken_plans=broken_plans.get(party_id, 0)),
                    pin=info['pin'],
                    withdrawn=frozenset(info['withdrawn']),
                    zone=info['zone'],
                    sent=tuple(sent.get(party_id, ()))))

        details = {
            'lines': lines,
            'parties': parties,
            'credits': dict(credits),
            'per_party': per_party,
            }
        return facts, details

    def apply(self, decisions, details, context):
        "Write the decisions of one batch in bulk and return what it did"
        pool = Pool()
        Dunning = pool.get('account.dunning')
        Audit = pool.get('account.dunning.audit')
        dunning = Dunning.__table__()
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        now = dt.datetime.now()
        lines = details['lines']
        procedure_of = {}
        for policy in context['policies'].values():
            for level in policy.levels:
                procedure_of[level.id] = policy.procedure_id

        # Read once: a record's field access costs more than the row it fills.
        user, company_id, date = transaction.user, self.company.id, self.date
        by_level = defaultdict(list)
        new = []
        for change in decisions.changes:
            info = lines[change.line_id]
            if info['dunning']:
                by_level[change.level_id].append(info['dunning'])
            else:
                new.append([
                        user, now, company_id,
                        change.line_id, procedure_of[change.level_id],
                        change.level_id, 'waiting', date, False])
        for level_id, dunning_ids in by_level.items():
            for sub in chunks(dunning_ids):
                cursor.execute(*dunning.update(
                        [dunning.level, dunning.procedure, dunning.state,
                            dunning.date, dunning.write_uid,
                            dunning.write_date],
                        [level_id, procedure_of[level_id], 'waiting',
                            date, user, now],
                        where=in_(dunning.id, sub)))
        columns = [dunning.create_uid, dunning.create_date, dunning.company,
            dunning.line, dunning.procedure, dunning.level, dunning.state,
            dunning.date, dunning.blocked]
        bulk.insert(dunning, columns, new)
        changed_ids = [c.line_id for c in decisions.changes]
        dunning_of = {}
        for sub in chunks(changed_ids):
            cursor.execute(*dunning.select(dunning.line, dunning.id,
                    where=in_(dunning.line, sub)))
            dunning_of.update(cursor)

        groups = defaultdict(list)
        for change in decisions.changes:
            groups[(change.party_id, change.level_id)].append(change.line_id)
        Audit.record([Audit.entry('level_reached', party=party_id,
                    level=level_id, lines=line_ids, date=date,
                    amount=sum(lines[l]['amount'] for l in line_ids))
                for (party_id, level_id), line_ids in groups.items()])

        self.store_segments(decisions.segments, details, context)
        messages = self.queue_messages(
            decisions.messages, details, dunning_of, context)
        actions = self.apply_actions(
            decisions.actions, details, dunning_of, context)
        return Counter(
            parties=len({f for f, _ in groups} | {
                    a.party_id for a in decisions.actions}),
            changes=len(decisions.changes),
            messages=messages,
            actions=actions)

    def count(self, counts):
        "Add what a batch did to the figures of the run"
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + value)

    def store_segments(self, segments, details, context):
        pool = Pool()
        PartySegment = pool.get('account.dunning.segment')
        parties = details['parties']
        policies = context['policies']
        reasons = {}
        for party_id, classification in segments:
            info = parties[party_id]
            policy = policies.get(info['procedure'])
            reasons[party_id] = describe(classification,
                policy.thresholds if policy else engine.Thresholds(),
                info['pin_reason'])
            info['segment'] = classification.segment
        PartySegment.store(self.company, self.date, segments, reasons)

    def queue_messages(self, decisions, details, dunning_of, context):
        pool = Pool()
        Message = pool.get('account.dunning.message')
        MessageDunning = pool.get('account.dunning.message-account.dunning')
        Audit = pool.get('account.dunning.audit')
        message = Message.__table__()
        message_dunning = MessageDunning.__table__()
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        now = dt.datetime.now()
        if not decisions:
            return 0
        parties = details['parties']
        columns = [message.create_uid, message.create_date, message.company,
            message.party, message.channel, message.level, message.date,
            message.recipient, message.amount, message.key, message.state,
            message.attempts, message.tone, message.next_attempt,
            message.planned_at]
        user, company_id = transaction.user, self.company.id

        def utc(moment):
            return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
        decided_at = utc(context['now'])
        values = [[user, now, company_id,
                d.party_id, d.channel, d.level_id, d.date,
                parties[d.party_id]['recipients'].get(d.channel),
                d.amount, d.key, 'deferred' if d.send_after else 'queued', 0,
                d.tone, d.send_after and utc(d.send_after),
                utc(d.send_after) if d.send_after else decided_at]
            for d in decisions]
        bulk.insert(message, columns, values)
        keys = [d.key for d in decisions]
        message_of = {}
        for sub in chunks(keys):
            cursor.execute(*message.select(message.key, message.id,
                    where=in_(message.key, sub)))
            message_of.update(cursor)
        lines = details['lines']
        links = [[user, now, message_of[d.key],
                    dunning_of.get(l) or lines[l]['dunning']]
            for d in decisions for l in d.line_ids]
        bulk.insert(message_dunning,
            [message_dunning.create_uid, message_dunning.create_date,
                message_dunning.message, message_dunning.dunning],
            links)
        # Deferred messages share a few reasons: each text is made once.
        reasons = {}

        def deferral(d):
            zone = parties[d.party_id]['zone'] or context['rules'].zone
            args = (d.channel, d.send_after, zone, d.deferred_for)
            if args not in reasons:
                reasons[args] = '%s: %s' % (d.channel,
                    gettext('dunning_advanced.msg_deferred_reason',
                        until=utc(d.send_after).isoformat(
                            sep=' ', timespec='minutes'),
                        zone=zone, reasons=', '.join(d.deferred_for)))
            return reasons[args]
        # A deferred message is queued for later: one entry says both.
        entries = [Audit.entry(
                'message_deferred' if d.send_after else 'message_queued',
                party=d.party_id, level=d.level_id, lines=d.line_ids,
                date=d.date, message=message_of[d.key], amount=d.amount,
                reason=deferral(d) if d.send_after else d.channel)
            for d in decisions]
        merged = [(replaced, message_of[d.key])
            for d in decisions for replaced in d.replaces]
        if merged:
            cursor.execute(*message.update(
                    [message.state, message.merged_into, message.write_uid,
                        message.write_date],
                    ['merged', Case(*((message.id == replaced, by)
                                for replaced, by in merged)), user, now],
                    where=in_(message.id, [r for r, _ in merged])
                    & (message.state == 'deferred')))
        entries.extend(Audit.entry('message_merged', message=replaced,
                party=d.party_id, level=d.level_id, date=d.date,
                reason=str(message_of[d.key]))
            for d in decisions for replaced in d.replaces)
        Audit.record(entries)
        return len(decisions)

    def apply_actions(self, actions, details, dunning_of, context):
        pool = Pool()
        Escalation = pool.get('account.dunning.escalation')
        if not actions:
            return 0
        with Transaction().set_context(dunning_date=self.date):
            Escalation.apply(self, actions, details, dunning_of, context)
        return len(actions)

    @classmethod
    def summarize(cls, decisions, details):
        """A text an accountant reads to know what a run would do: for each
        party, the level, channel, amount and invoices of its reminders and
        the actions taken, in words"""
        pool = Pool()
        Level = pool.get('account.dunning.level')
        Message = pool.get('account.dunning.message')
        PartySegment = pool.get('account.dunning.segment')
        Company = pool.get('company.company')
        Lang = pool.get('ir.lang')
        lang = Lang.get()
        currency = Company(Transaction().context['company']).currency
        parties, lines = details['parties'], details['lines']
        level_ids = {c.level_id for c in decisions.changes} | {
            m.level_id for m in decisions.messages} | {
            a.level_id for a in decisions.actions if a.level_id}
        levels = {l.id: l for l in Level.browse(list(level_ids))}
        channels = dict(Message.get_channels())
        segments = dict(PartySegment.fields_get(
                ['segment'])['segment']['selection'])

        def amount(value):
            return (lang.currency(value, currency, grouping=True)
                if value else '')

        def invoices(line_ids):
            numbers = [lines[l]['number'] for l in line_ids
                if l in lines and lines[l]['number']]
            return ', '.join(numbers) or str(len(line_ids))

        out = [gettext('dunning_advanced.msg_dry_run_totals',
                changes=len(decisions.changes),
                messages=len(decisions.messages),
                actions=len(decisions.actions))]
        for message in decisions.messages:
            out.append(gettext('dunning_advanced.msg_dry_run_message',
                    party=parties[message.party_id]['name'],
                    level=levels[message.level_id].rec_name,
                    channel=channels[message.channel],
                    amount=amount(message.amount),
                    invoices=invoices(message.line_ids)))
        for action in decisions.actions:
            level = levels.get(action.level_id)
            fee = level.fee if level and action.kind == FEE else None
            # A kind a module adds without its words is shown as is.
            words = (gettext(ACTION_WORDS[action.kind],
                    amount=amount(action.amount),
                    fee=fee.rec_name if fee else '',
                    invoices=invoices(action.line_ids))
                if action.kind in ACTION_WORDS else action.kind)
            party = parties[action.party_id]['name']
            if level:
                out.append(gettext('dunning_advanced.msg_dry_run_action',
                        party=party, action=words, level=level.rec_name))
            else:
                out.append(gettext(
                        'dunning_advanced.msg_dry_run_action_no_level',
                        party=party, action=words))
        counts = Counter(c.segment for _, c in decisions.segments)
        if counts:
            out.append(gettext('dunning_advanced.msg_dry_run_segments',
                    segments=', '.join(
                        f'{segments[segment]} {count}'
                        for segment, count in sorted(counts.items()))))
        skipped = Counter(skip.reason for skip in decisions.skipped)
        for reason, count in sorted(skipped.items()):
            out.append(gettext('dunning_advanced.msg_dry_run_skipped',
                    count=count,
                    reason=(gettext(SKIP_WORDS[reason])
                        if reason in SKIP_WORDS else reason)))
        return '\n'.join(out)


# What the run's processes share: set by Run._execute_split before forking.
_split_run = None


def _run_batch(party_ids):
    "Load, decide and write one batch in a process of the split run"
    job = _split_run
    pool = Pool(job['database'])
    Run = pool.get('account.dunning.run')
    Company = pool.get('company.company')
    # The fork copied the parent's transaction: this one is new.
    with Transaction(new=True).start(job['database'], job['user'],
            context=job['context']) as transaction, collector_paused():
        company, date, context = (
            Company(job['company']), job['date'], job['facts'])
        facts, details = Run.load(company, date, party_ids, context)
        decisions = Run.decide(facts, date, context)
        counts = Run(job['run']).apply(decisions, details, context)
        transaction.commit()
    return counts


class RunDunningStart(ModelView):
    "Run Dunning"
    __name__ = 'account.dunning.run_wizard.start'
    date = fields.Date("Date", required=True,
        help="The day the run is for.")
    dry_run = fields.Boolean("Dry Run",
        help="Show what would be created and sent, writing nothing.")

    @classmethod
    def default_date(cls):
        return Pool().get('ir.date').today()

    @classmethod
    def default_dry_run(cls):
        return True


class RunDunningResult(ModelView):
    "Run Dunning"
    __name__ = 'account.dunning.run_wizard.result'
    summary = fields.Text("Summary", readonly=True)


class RunDunning(Wizard):
    "Run Dunning"
    __name__ = 'account.dunning.run_wizard'
    start = StateView('account.dunning.run_wizard.start',
        'dunning_advanced.run_wizard_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Run", 'run_', 'tryton-ok', default=True),
            ])
    run_ = StateTransition()
    result = StateView('account.dunning.run_wizard.result',
        'dunning_advanced.run_wizard_result_view_form', [
            Button("Close", 'end', 'tryton-close', default=True),
            ])

    def transition_run_(self):
        pool = Pool()
        Run = pool.get('account.dunning.run')
        if self.start.dry_run:
            decisions, details = Run.dry_run(self.start.date)
            self.result.summary = Run.summarize(decisions, details)
        else:
            # A request's thread must not fork: another thread of the
            # server may hold a lock the child would wait for forever.
            with Transaction().set_context(dunning_run_processes=1):
                run = Run.execute(self.start.date)
            self.result.summary = gettext(
                'dunning_advanced.msg_run_done', parties=run.parties,
                changes=run.changes, messages=run.messages,
                actions=run.actions)
        return 'result'

    def default_result(self, fields):
        return {'summary': self.result.summary}

