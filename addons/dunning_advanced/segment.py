"""Customer segments: thresholds and per-segment cadence on the procedure,
the segment of each party learnt by the daily run, its history and pins."""
import datetime as dt

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval
from trytond.transaction import Transaction

from . import bulk
from .entered import EnteredValuesMixin
from .bulk import chunks, in_
from .engine import (
    FIRM, GENTLE, NEUTRAL, SEGMENTS, Classification, SegmentRule, Thresholds)

SEGMENT_SELECTION = [
    ('new', "New"),
    ('reliable', "Reliable"),
    ('first_late', "First-time Late"),
    ('repeat_late', "Repeat Late"),
    ('high_risk', "High Risk"),
    ]
assert [s for s, _ in SEGMENT_SELECTION] == list(SEGMENTS)
TONE_SELECTION = [
    (GENTLE, "Gentle"),
    (NEUTRAL, "Neutral"),
    (FIRM, "Firm"),
    ]
THRESHOLDS = {
    'window_days': "Look-back Window (days)",
    'grace_days': "Grace (days)",
    'new_below_paid': "New below Paid Invoices",
    'repeat_late_count': "Repeat Late from Late Payments",
    'high_risk_late_count': "High Risk from Late Payments",
    'high_risk_average_days': "High Risk from Average Days Late",
    'high_risk_overdue_days': "High Risk from Days Overdue",
    'high_risk_broken_plans': "High Risk from Broken Plans",
    'high_risk_disputes': "High Risk from Disputes",
    }
THRESHOLD_HELPS = {
    'window_days': "Only payments of this many days before the run count.",
    'grace_days': "A payment up to this many days after the due date is "
    "not late.",
    'new_below_paid': "A customer with fewer invoices paid in the window, "
    "none late, is new.",
    'repeat_late_count': "Invoices paid late from which a customer is "
    "repeat late (one is first-time late).",
    'high_risk_late_count': "Invoices paid late from which a customer is "
    "high risk.",
    'high_risk_average_days': "Average days late, weighted by amount, from "
    "which a customer who paid late is high risk.",
    'high_risk_overdue_days': "Days its oldest open invoice is late from "
    "which a customer is high risk.",
    'high_risk_broken_plans': "Broken payment plans from which a customer "
    "is high risk.",
    'high_risk_disputes': "Disputes from which a customer is high risk.",
    }
# The thresholds that count days, not invoices or events
THRESHOLD_DAYS = ('window_days', 'grace_days', 'high_risk_average_days',
    'high_risk_overdue_days')


class ProcedureSegment(EnteredValuesMixin, ModelSQL, ModelView):
    "Dunning Procedure Segment"
    __name__ = 'account.dunning.procedure.segment'
    _day_fields = frozenset({'shift_days'})
    procedure = fields.Many2One(
        'account.dunning.procedure', "Procedure", required=True,
        ondelete='CASCADE')
    segment = fields.Selection(SEGMENT_SELECTION, "Segment", required=True)
    tone = fields.Selection(TONE_SELECTION, "Tone", required=True,
        help="Which template of each level the segment gets.")
    shift_days = fields.Integer("Shift (days)", required=True,
        help="Moves every level by this many days for the segment: "
        "negative for earlier reminders.")
    skipped_levels = fields.Many2Many(
        'account.dunning.procedure.segment-account.dunning.level',
        'segment', 'level', "Skipped Levels",
        domain=[('procedure', '=', Eval('procedure', -1))],
        help="Levels the segment never gets.")
    channels = fields.Char("Channel Order",
        help="Channels by preference, separated by commas (e.g. "
        "\"sms, email\"): a level then goes out on the first one the "
        "customer can be reached on, plus its letter. Empty: every channel "
        "of the level.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [
            ('procedure_segment_unique', Unique(t, t.procedure, t.segment),
                'dunning_advanced.msg_procedure_segment_unique'),
            ]
        cls._order.insert(0, ('procedure', 'ASC'))

    @classmethod
    def default_tone(cls):
        return NEUTRAL

    @classmethod
    def default_shift_days(cls):
        return 0

    @property
    def channel_list(self):
        return tuple(c.strip() for c in (self.channels or '').split(',')
            if c.strip())

    @classmethod
    def validate_fields(cls, segments, field_names):
        super().validate_fields(segments, field_names)
        if 'channels' in field_names:
            Message = Pool().get('account.dunning.message')
            known = [c for c, _ in Message.get_channels()]
            for segment in segments:
                for channel in segment.channel_list:
                    if channel not in known:
                        raise ValidationError(gettext(
                                'dunning_advanced.msg_segment_unknown_channel',
                                channel=channel, segment=segment.rec_name,
                                channels=', '.join(known)))

    def get_rec_name(self, name):
        return f'{self.procedure.rec_name} / {self.segment_string}'

    segment_string = segment.translated('segment')

    def to_rule(self):
        return SegmentRule(
            segment=self.segment, tone=self.tone,
            shift_days=self.shift_days or 0,
            skipped_level_ids=frozenset(l.id for l in self.skipped_levels),
            channels=self.channel_list)


class ProcedureSegmentLevel(ModelSQL):
    "Dunning Procedure Segment - Skipped Level"
    __name__ = 'account.dunning.procedure.segment-account.dunning.level'
    segment = fields.Many2One(
        'account.dunning.procedure.segment', "Segment", required=True,
        ondelete='CASCADE')
    level = fields.Many2One(
        'account.dunning.level', "Level", required=True, ondelete='CASCADE')


FIGURES = [
    'paid_count', 'late_count', 'average_days_late', 'worst_days_late',
    'overdue_amount', 'overdue_days', 'disputes', 'broken_plans']


class PartySegment(ModelSQL, ModelView):
    "Dunning Segment of a Party"
    __name__ = 'account.dunning.segment'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        ondelete='CASCADE',
        context={'company': Eval('company', -1)}, depends={'company'})
    date = fields.Date("Date", readonly=True,
        help="The run that computed the segment.")
    segment = fields.Selection(SEGMENT_SELECTION, "Segment", readonly=True)
    computed = fields.Selection(SEGMENT_SELECTION, "From History",
        readonly=True, help="What the payment history says, pin or not.")
    reason = fields.Char("Why", readonly=True)
    paid_count = fields.Integer("Invoices Paid", readonly=True)
    late_count = fields.Integer("Paid Late", readonly=True)
    average_days_late = fields.Numeric(
        "Average Days Late", digits=(16, 2), readonly=True,
        help="Weighted by amount.")
    worst_days_late = fields.Integer("Worst Days Late", readonly=True)
    overdue_amount = fields.Numeric(
        "Overdue Amount", digits=(16, 2), readonly=True)
    overdue_days = fields.Integer("Oldest Overdue (days)", readonly=True)
    disputes = fields.Integer("Disputes", readonly=True)
    broken_plans = fields.Integer("Broken Plans", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [
            ('company_party_unique', Unique(t, t.company, t.party),
                'dunning_advanced.msg_segment_party_unique'),
            ]

    @classmethod
    def store(cls, company, date, classifications, reasons):
        """Replace the segments of the parties classified, and log in
        their history those that changed: a fixed number of queries."""
        pool = Pool()
        Change = pool.get('account.dunning.segment.change')
        table = cls.__table__()
        change = Change.__table__()
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        party_ids = [party_id for party_id, _ in classifications]
        before = {}
        for sub in chunks(party_ids):
            cursor.execute(*table.select(table.party, table.segment,
                    where=(table.company == company.id)
                    & in_(table.party, sub)))
            before.update(cursor)
            cursor.execute(*table.delete(where=(table.company == company.id)
                    & in_(table.party, sub)))
        now = dt.datetime.now()
        columns = [table.create_uid, table.create_date, table.company,
            table.party, table.date, table.segment, table.computed,
            table.reason] + [getattr(table, f) for f in FIGURES]
        bulk.insert(table, columns, [[
                    transaction.user, now, company.id, party_id, date,
                    c.segment, c.computed, reasons[party_id]]
                + [getattr(c.figures, f) for f in FIGURES]
                for party_id, c in classifications])
        bulk.insert(change, [change.create_uid, change.create_date,
                change.company, change.party, change.date, change.from_,
                change.to, change.reason], [[
                    transaction.user, now, company.id, party_id, date,
                    before.get(party_id), c.segment, reasons[party_id]]
                for party_id, c in classifications
                if before.get(party_id) != c.segment])


class SegmentChange(ModelSQL, ModelView):
    "Dunning Segment Change"
    __name__ = 'account.dunning.segment.change'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        ondelete='CASCADE',
        context={'company': Eval('company', -1)}, depends={'company'})
    date = fields.Date("Date", readonly=True)
    from_ = fields.Selection(
        [(None, "")] + SEGMENT_SELECTION, "From", readonly=True)
    to = fields.Selection(SEGMENT_SELECTION, "To", readonly=True)
    reason = fields.Char("Why", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]


def describe(classification: Classification, thresholds: Thresholds,
        pin_reason=None):
    "Why a party is in its segment, in words an accountant reads"
    if classification.rule == 'pinned':
        return gettext('dunning_advanced.msg_segment_rule_pinned',
            reason=pin_reason or '')
    figures = classification.figures
    values = {
        'paid': figures.paid_count,
        'late': figures.late_count,
        'average': figures.average_days_late,
        'overdue_days': figures.overdue_days,
        'broken_plans': figures.broken_plans,
        'disputes': figures.disputes,
        'window': thresholds.window_days,
        }
    values.update({name: getattr(thresholds, name)
            for name in THRESHOLDS})
    return gettext(
        f'dunning_advanced.msg_segment_rule_{classification.rule}', **values)


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'
    dunning_segment = fields.Function(fields.Selection(
            [(None, "")] + SEGMENT_SELECTION, "Segment",
            help="Learnt from the payment history by the daily run."),
        'get_dunning_segment', searcher='search_dunning_segment')
    dunning_segment_reason = fields.Function(
        fields.Char("Segment Reason"), 'get_dunning_segment')
    dunning_segment_figures = fields.One2Many(
        'account.dunning.segment', 'party', "Segment Figures", readonly=True)
    dunning_segment_changes = fields.One2Many(
        'account.dunning.segment.change', 'party', "Segment History",
        readonly=True)
    dunning_segment_pin = fields.Selection(
        [(None, "")] + SEGMENT_SELECTION, "Pinned Segment",
        help="Keep the customer in this segment whatever its history.")
    dunning_segment_pin_reason = fields.Char("Pin Reason",
        states={
            'required': Bool(Eval('dunning_segment_pin')),
            'invisible': ~Eval('dunning_segment_pin'),
            })
    dunning_segment_pin_until = fields.Date("Pinned until",
        states={'invisible': ~Eval('dunning_segment_pin')},
        help="The pin ends after this date; empty for no end.")

    @classmethod
    def _segment_rows(cls, party_ids):
        pool = Pool()
        Segment = pool.get('account.dunning.segment')
        company = Transaction().context.get('company')
        return Segment.search([
                ('party', 'in', party_ids),
                ('company', '=', company),
                ])

    @classmethod
    def get_dunning_segment(cls, parties, names):
        result = {name: {p.id: None for p in parties} for name in names}
        for row in cls._segment_rows([p.id for p in parties]):
            if 'dunning_segment' in result:
                result['dunning_segment'][row.party.id] = row.segment
            if 'dunning_segment_reason' in result:
                result['dunning_segment_reason'][row.party.id] = row.reason
        return result

    @classmethod
    def search_dunning_segment(cls, name, clause):
        _, operator, value = clause[:3]
        company = Transaction().context.get('company')
        return [('dunning_segment_figures', 'where', [
                    ('company', '=', company),
                    ('segment', operator, value),
                    ])]

    @classmethod
    def copy(cls, parties, default=None):
        default = default.copy() if default else {}
        for name in ['dunning_segment_figures', 'dunning_segment_changes']:
            default.setdefault(name, None)
        return super().copy(parties, default=default)

    @classmethod
    def write(cls, *args):
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        pin_fields = {'dunning_segment_pin', 'dunning_segment_pin_reason',
            'dunning_segment_pin_until'}
        pinned = []
        actions = iter(args)
        for parties, values in zip(actions, actions):
            if values.keys() & pin_fields:
                pinned.extend(parties)
        super().write(*args)
        Audit.record([Audit.entry('segment_pinned', party=p,
                    reason=gettext('dunning_advanced.msg_segment_pin_audit',
                        segment=p.dunning_segment_pin or '-',
                        until=p.dunning_segment_pin_until or '-',
                        reason=p.dunning_segment_pin_reason or ''))
                for p in cls.browse(pinned)])
