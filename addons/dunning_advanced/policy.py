"""The policy: procedures whose levels sit before or after the due date."""
import datetime as dt
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import fields
from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval

from .entered import EnteredValuesMixin
from .engine import LevelRule, Policy, Thresholds, blocking_level_ids
from .segment import THRESHOLD_DAYS, THRESHOLD_HELPS, THRESHOLDS


def _threshold_field(name):
    return fields.Integer(THRESHOLDS[name], required=True,
        help=THRESHOLD_HELPS[name])


class Procedure(EnteredValuesMixin, metaclass=PoolMeta):
    __name__ = 'account.dunning.procedure'
    interest_journal = fields.Many2One(
        'account.journal', "Interest Journal",
        help="The journal of the moves that charge late-payment interest.")
    interest_account = fields.Many2One(
        'account.account', "Interest Account",
        domain=[('type.revenue', '=', True), ('closed', '!=', True)],
        help="The revenue account credited with late-payment interest.")
    segment_window_days = _threshold_field('window_days')
    segment_grace_days = _threshold_field('grace_days')
    segment_new_below_paid = _threshold_field('new_below_paid')
    segment_repeat_late_count = _threshold_field('repeat_late_count')
    segment_high_risk_late_count = _threshold_field('high_risk_late_count')
    segment_high_risk_average_days = _threshold_field(
        'high_risk_average_days')
    segment_high_risk_overdue_days = _threshold_field(
        'high_risk_overdue_days')
    segment_high_risk_broken_plans = _threshold_field(
        'high_risk_broken_plans')
    segment_high_risk_disputes = _threshold_field('high_risk_disputes')
    segments = fields.One2Many(
        'account.dunning.procedure.segment', 'procedure', "Segments",
        help="How the reminders of each segment go: tone, cadence and "
        "channels.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # The engine's thresholds are the one source of the defaults.
        defaults = Thresholds()
        for name in THRESHOLDS:
            setattr(cls, f'default_segment_{name}',
                classmethod(lambda cls, v=getattr(defaults, name): v))
        cls._day_fields |= {f'segment_{name}' for name in THRESHOLD_DAYS}

    @property
    def thresholds(self):
        return Thresholds(**{
                name: getattr(self, f'segment_{name}') for name in THRESHOLDS})

    @classmethod
    def validate_fields(cls, procedures, field_names):
        super().validate_fields(procedures, field_names)
        if field_names & {f'segment_{n}' for n in THRESHOLDS}:
            for procedure in procedures:
                procedure.check_thresholds()

    def check_thresholds(self):
        for name, problem in self.thresholds.errors():
            raise ValidationError(gettext(
                    f'dunning_advanced.msg_segment_threshold_{problem}',
                    procedure=self.rec_name,
                    threshold=self.__class__.fields_get(
                        [f'segment_{name}'])[f'segment_{name}']['string'],
                    value=getattr(self, f'segment_{name}')))

    @classmethod
    def validate(cls, procedures):
        super().validate(procedures)
        for procedure in procedures:
            procedure.check_levels_order()
            procedure.check_interest_accounts()

    def check_levels_order(self):
        previous = None
        for level in self.levels:
            offset = level.effective_offset
            if offset is None:
                continue
            if previous is not None and offset <= previous.effective_offset:
                raise ValidationError(gettext(
                        'dunning_advanced.msg_level_out_of_order',
                        procedure=self.rec_name,
                        level=level.rec_name, offset=offset,
                        previous=previous.rec_name,
                        previous_offset=previous.effective_offset))
            previous = level

    def check_interest_accounts(self):
        if (any((l.interest_rate or 0) > 0 for l in self.levels)
                and not (self.interest_journal and self.interest_account)):
            raise ValidationError(gettext(
                    'dunning_advanced.msg_interest_without_account',
                    procedure=self.rec_name))

    @property
    def blocking_level_ids(self):
        "The levels at which a line keeps its party's ordering blocked"
        return blocking_level_ids(self.to_policy())

    def to_policy(self, rounding=Decimal('0.01')):
        return Policy(
            procedure_id=self.id,
            levels=tuple(
                l.to_rule() for l in self.levels
                if l.effective_offset is not None),
            rounding=rounding,
            thresholds=self.thresholds,
            segments=tuple(s.to_rule() for s in self.segments))


class Level(EnteredValuesMixin, metaclass=PoolMeta):
    __name__ = 'account.dunning.level'
    _day_fields = frozenset({'offset_days', 'overdue'})
    name = fields.Char("Name", translate=True,
        help="How accountants and customers call this step.")
    offset_days = fields.Integer(
        "Days from Due Date",
        help="Signed number of days from the maturity date: negative before "
        "it (courtesy reminder), 0 on it, positive after it.\n"
        "Leave empty to use the overdue delay.")
    channels = fields.MultiSelection(
        'get_channels', "Channels",
        help="How the customer is told when a line reaches this level.")
    template = fields.Many2One(
        'account.dunning.template', "Template",
        states={'required': Bool(Eval('channels'))},
        help="The text of the reminder, in the neutral tone.")
    template_gentle = fields.Many2One(
        'account.dunning.template', "Gentle Template",
        help="The text for the segments in the gentle tone; "
        "empty to use the neutral one.")
    template_firm = fields.Many2One(
        'account.dunning.template', "Firm Template",
        help="The text for the segments in the firm tone; "
        "empty to use the neutral one.")
    interest_rate = fields.Numeric(
        "Annual Interest Rate", digits=(None, 4),
        help="Charge interest at this annual rate (0.08 for 8%) on the "
        "overdue amount for each day late when the level is reached.")
    collection = fields.Boolean(
        "Hand over to Collections",
        help="Open a collection case for the agency.")
    call_task = fields.Boolean(
        "Call the Customer",
        help="Create a task for an accountant to call the customer.")
    formal_notice = fields.Boolean(
        "Formal Notice",
        help="A notice the law lets us send: it still goes by letter to a "
        "customer who opted out of every other channel; other levels send "
        "such a customer nothing.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.credit_limit.string = "Block Ordering"
        cls.credit_limit.help = (
            "Refuse new sales orders of the party while it has a line at "
            "this level or a later one.")

    @classmethod
    def get_channels(cls):
        pool = Pool()
        Message = pool.get('account.dunning.message')
        return Message.get_channels()

    def template_for(self, tone):
        "The template of tone, else the neutral one"
        return getattr(self, f'template_{tone}', None) or self.template

    @property
    def effective_offset(self):
        if self.offset_days is not None:
            return self.offset_days
        if self.overdue is not None:
            return self.overdue.days

    def test(self, line, date):
        if self.offset_days is not None:
            return (date - line.maturity_date) >= dt.timedelta(
                days=self.offset_days)
        return super().test(line, date)

    def get_rec_name(self, name):
        if self.name:
            return self.name
        return super().get_rec_name(name)

    @classmethod
    def validate_fields(cls, levels, field_names):
        super().validate_fields(levels, field_names)
        for level in levels:
            if level.interest_rate is not None and level.interest_rate < 0:
                raise ValidationError(gettext(
                        'dunning_advanced.msg_interest_rate_negative',
                        level=level.rec_name))
            if level.fee:
                level.fee.check_account()

    @classmethod
    def validate(cls, levels):
        super().validate(levels)
        for procedure in {l.procedure for l in levels}:
            procedure.check_levels_order()
            procedure.check_interest_accounts()

    def to_rule(self):
        return LevelRule(
            id=self.id,
            offset_days=self.effective_offset,
            sequence=self.sequence or 0,
            channels=tuple(self.channels or ()),
            fee=bool(self.fee),
            interest_rate=self.interest_rate or None,
            block_ordering=bool(self.credit_limit),
            collection=bool(self.collection),
            call_task=bool(self.call_task),
            formal_notice=bool(self.formal_notice))


class Fee(EnteredValuesMixin, metaclass=PoolMeta):
    __name__ = 'account.dunning.fee'

    @classmethod
    def validate_fields(cls, fees, field_names):
        super().validate_fields(fees, field_names)
        if field_names & {'product', 'journal'}:
            for fee in fees:
                fee.check_account()

    def check_account(self):
        try:
            account = self.product.account_revenue_used
        except UserError:
            account = None
        if not (self.journal and account):
            raise ValidationError(gettext(
                    'dunning_advanced.msg_fee_without_account',
                    fee=self.rec_name))
