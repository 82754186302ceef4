"""Blocked ordering: the refusal of orders while a line sits at a level that
blocks ordering, and the overrides that lift it for a while."""
import datetime as dt

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Workflow, fields
from trytond.model.exceptions import AccessError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .exceptions import BlockOverrideValidationError, OrderingBlockedError

# An override is a promise made to a customer in arrears: it is weighed
# again at least every quarter, not granted for good.
MAX_OVERRIDE_DAYS = 90


# An override stays as granted: its audit entry tells what was promised.
_GRANTED = {'readonly': Eval('id', -1) >= 0}


class BlockOverride(ModelSQL, ModelView):
    "Dunning Block Override"
    __name__ = 'account.dunning.block.override'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, states=_GRANTED,
        context={'company': Eval('company', -1)}, depends={'company'})
    reason = fields.Text("Reason", required=True, states=_GRANTED)
    end_date = fields.Date(
        "End Date", required=True, states=_GRANTED,
        help="Orders are accepted up to this day included; "
        "the block holds again the day after.")
    user = fields.Many2One('res.user', "Granted by", readonly=True)
    state = fields.Function(fields.Selection([
                ('active', "Active"),
                ('expired', "Expired"),
                ], "State"), 'get_state')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('end_date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_party(cls):
        return Transaction().context.get('dunning_block_party')

    @classmethod
    def default_user(cls):
        return Transaction().user

    @staticmethod
    def today(company):
        pool = Pool()
        Date = pool.get('ir.date')
        with Transaction().set_context(company=company.id):
            return Date.today()

    def get_state(self, name):
        return ('active' if self.end_date >= self.today(self.company)
            else 'expired')

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if mode == 'create':
            # Who granted it is a fact of the audit, not an input.
            transaction = Transaction()
            values['user'] = (
                transaction.context.get('user') or transaction.user or None)
        return values

    @classmethod
    def validate_fields(cls, overrides, field_names):
        super().validate_fields(overrides, field_names)
        if field_names & {'reason', 'end_date'}:
            for override in overrides:
                override.check_reason()
                override.check_end_date()

    def check_reason(self):
        if not (self.reason or '').strip():
            raise BlockOverrideValidationError(gettext(
                    'dunning_advanced.msg_block_override_no_reason',
                    party=self.party.rec_name))

    def check_end_date(self):
        pool = Pool()
        Lang = pool.get('ir.lang')
        lang = Lang.get()
        today = self.today(self.company)
        if self.end_date < today:
            raise BlockOverrideValidationError(gettext(
                    'dunning_advanced.msg_block_override_end_past',
                    party=self.party.rec_name,
                    end_date=lang.strftime(self.end_date),
                    today=lang.strftime(today)))
        latest = today + dt.timedelta(days=MAX_OVERRIDE_DAYS)
        if self.end_date > latest:
            raise BlockOverrideValidationError(gettext(
                    'dunning_advanced.msg_block_override_too_long',
                    party=self.party.rec_name,
                    end_date=lang.strftime(self.end_date),
                    days=MAX_OVERRIDE_DAYS,
                    latest=lang.strftime(latest)))

    @classmethod
    def check_modification(cls, mode, overrides, values=None, external=False):
        super().check_modification(
            mode, overrides, values=values, external=external)
        if mode in {'write', 'delete'}:
            raise AccessError(gettext(
                    'dunning_advanced.msg_block_override_readonly'))

    @classmethod
    def on_modification(cls, mode, overrides, field_names=None):
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        Lang = pool.get('ir.lang')
        super().on_modification(mode, overrides, field_names=field_names)
        if mode != 'create':
            return
        lang = Lang.get()
        for override in overrides:
            with Transaction().set_context(company=override.company.id):
                Audit.record([Audit.entry('block_overridden',
                            party=override.party,
                            date=cls.today(override.company),
                            reason=gettext(
                                'dunning_advanced.msg_block_override_audit',
                                end_date=lang.strftime(override.end_date),
                                reason=override.reason))])

    @classmethod
    def lifting(cls, party, company):
        "Return the overrides that lift the block of party today"
        with without_check_access():
            return cls.search([
                    ('company', '=', company.id),
                    ('party', '=', party.id),
                    ('end_date', '>=', cls.today(company)),
                    ])


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    def blocking_dunnings(self):
        pool = Pool()
        Dunning = pool.get('account.dunning')
        Procedure = pool.get('account.dunning.procedure')
        with without_check_access():
            # A line past the blocking level, at collections say, still blocks.
            level_ids = sorted({level_id for procedure in Procedure.search([])
                    for level_id in procedure.blocking_level_ids})
            return Dunning.search([
                    ('party', '=', self.id),
                    ('level', 'in', level_ids),
                    ('blocked', '!=', True),
                    ('state', '!=', 'draft'),
                    ])

    def check_credit_limit(self, amount, company, origin=None):
        """Refuse new orders while a line sits at a level that blocks
        ordering.

        Tryton checks its dunning levels only for parties with a credit limit
        amount, and lets the credit limit group skip it: a blocking level
        must stop every party and every user until an override lifts it.
        """
        context = {}
        if amount > 0 and self.check_dunning_block(company):
            context['_dunning_block_lifted'] = self.id
        with Transaction().set_context(context):
            super().check_credit_limit(amount, company, origin=origin)

    def check_dunning_block(self, company):
        """Raise while a line of the party blocks ordering, unless an override
        lifts the block: then return True"""
        pool = Pool()
        Override = pool.get('account.dunning.block.override')
        if not self.blocking_dunnings():
            return False
        if not Override.lifting(self, company):
            raise OrderingBlockedError(gettext(
                    'dunning_advanced.msg_ordering_blocked',
                    party=self.rec_name,
                    invoices=self.dunning_overdue_text(company),
                    users=self.dunning_override_users()))
        return True

    def dunning_overdue_text(self, company):
        "One line per overdue invoice: number, due date and amount due"
        pool = Pool()
        Line = pool.get('account.move.line')
        Invoice = pool.get('account.invoice')
        Lang = pool.get('ir.lang')
        lang = Lang.get()
        with without_check_access():
            lines = Line.search([
                    ('party', '=', self.id),
                    ('account.company', '=', company.id),
                    ('account.type.receivable', '=', True),
                    ('move.state', '=', 'posted'),
                    ('reconciliation', '=', None),
                    ('maturity_date', '<', BlockOverride.today(company)),
                    ], order=[('maturity_date', 'ASC'), ('id', 'ASC')])
            rows, seen = [], set()
            for line in lines:
                if line.debit <= line.credit:
                    continue
                origin = line.move.origin
                if isinstance(origin, Invoice):
                    if origin in seen:
                        continue
                    seen.add(origin)
                    # What is left once partial payments are deducted.
                    number, amount, currency = (
                        origin.number, origin.amount_to_pay_today,
                        origin.currency)
                else:
                    number, amount, currency = (
                        line.move.rec_name, line.debit - line.credit,
                        company.currency)
                if amount <= 0:
                    continue
                rows.append(gettext(
                        'dunning_advanced.msg_ordering_blocked_invoice',
                        invoice=number,
                        due_date=lang.strftime(line.maturity_date),
                        amount=lang.currency(amount, currency, grouping=True)))
        return '\n'.join(rows)

    @staticmethod
    def dunning_override_users():
        "Who can lift a block, by name"
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        Group = pool.get('res.group')
        with without_check_access():
            group = Group(ModelData.get_id(
                    'dunning_advanced', 'group_dunning_override'))
            names = sorted(u.rec_name for u in group.users if u.active)
            return gettext('dunning_advanced.msg_ordering_blocked_users',
                group=group.rec_name,
                users=', '.join(names) or gettext(
                    'dunning_advanced.msg_ordering_blocked_no_user'))


class Dunning(metaclass=PoolMeta):
    __name__ = 'account.dunning'

    @classmethod
    def search(cls, domain, *args, **kwargs):
        # Tryton's own check of credit limit levels would still refuse, or
        # warn about, a party whose block an override lifted.
        lifted = Transaction().context.get('_dunning_block_lifted')
        if lifted:
            domain = [domain, ('party', '!=', lifted)]
        return super().search(domain, *args, **kwargs)


class Sale(metaclass=PoolMeta):
    __name__ = 'sale.sale'

    @classmethod
    @ModelView.button
    @Workflow.transition('confirmed')
    def confirm(cls, sales):
        # sale_credit_limit checks only the invoice party, and only of the
        # sales shipped on order: the block stops the party whatever the
        # shipment method or the party invoiced.
        for sale in sales:
            if sale.credit_limit_amount > 0:
                for party in dict.fromkeys(
                        [sale.party, sale.invoice_party or sale.party]):
                    party.check_dunning_block(sale.company)
        super().confirm(sales)
