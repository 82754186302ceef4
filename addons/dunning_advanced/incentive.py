"""Incentives to pay on time: an early-payment discount on the payment term
and a quarterly reward for reliable customers.

Early-payment discount, on a worked example: an invoice of 1000.00 + 20 % VAT
= 1200.00 dated 2026-03-02 with a term "2 % within 10 days".

    offer:    discount 1200.00 x 2 % = 24.00, pay 1176.00 by 2026-03-12
    paid:     1176.00 on 2026-03-10 (the Pay wizard or an unallocated
              bank payment of exactly 1176.00)
    the next daily run posts, dated 2026-03-10, in the discount journal:
              discount account   debit 20.00   tax line base -20.00
              VAT account        debit  4.00   tax line tax   -4.00
              receivable         credit 24.00
    and reconciles 1200.00 = 1176.00 + 24.00: the invoice is paid.
    Paid on 2026-03-13 instead: no discount, 24.00 stays due and is dunned.

On-time reward: a reliable customer who paid 10000.00 of invoices on or
before their due date in Q1 with a rate of 0.5 % gets a draft credit note of
50.00 proposed early in Q2, for an accountant to post.
"""
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sql import Null
from sql.aggregate import Max

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.account.exceptions import PeriodNotFoundError
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction

from .bulk import chunks, in_
from .entered import EnteredValuesMixin


def _decimal(value):
    "A Decimal from a column value (SQLite may answer a float)"
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


class PaymentTerm(EnteredValuesMixin, metaclass=PoolMeta):
    __name__ = 'account.invoice.payment_term'
    _day_fields = frozenset({'early_discount_days'})
    early_discount_rate = fields.Numeric(
        "Early-Payment Discount", digits=(None, 4),
        help="The discount granted when the invoice is paid early: "
        "0.02 for 2%.")
    early_discount_days = fields.Integer(
        "Discount Days",
        help="How many days after the invoice date the discount holds.")

    def has_early_discount(self):
        return (self.early_discount_rate is not None
            or self.early_discount_days is not None)

    @classmethod
    def validate_fields(cls, terms, field_names):
        super().validate_fields(terms, field_names)
        if field_names & {'early_discount_rate', 'early_discount_days'}:
            for term in terms:
                term.check_early_discount()

    def check_early_discount(self):
        pool = Pool()
        Configuration = pool.get('account.configuration')
        if not self.has_early_discount():
            return
        if self.early_discount_rate is None or self.early_discount_days is None:
            raise ValidationError(gettext(
                    'dunning_advanced.msg_early_discount_incomplete',
                    payment_term=self.rec_name))
        if not (0 < self.early_discount_rate < 1):
            raise ValidationError(gettext(
                    'dunning_advanced.msg_early_discount_rate_range',
                    payment_term=self.rec_name,
                    rate=self.early_discount_rate))
        if self.early_discount_days < 0:
            raise ValidationError(gettext(
                    'dunning_advanced.msg_early_discount_days_negative',
                    payment_term=self.rec_name,
                    days=self.early_discount_days))
        config = Configuration(1)
        if not (config.early_discount_account
                and config.early_discount_journal):
            raise ValidationError(gettext(
                    'dunning_advanced.msg_early_discount_without_account',
                    payment_term=self.rec_name))


class Configuration(EnteredValuesMixin, metaclass=PoolMeta):
    __name__ = 'account.configuration'
    early_discount_account = fields.Many2One(
        'account.account', "Early-Payment Discount Account",
        domain=[
            ('type.expense', '=', True),
            ('closed', '!=', True),
            ('company', '=', Eval('context', {}).get('company', -1)),
            ],
        help="The expense account debited with the early-payment "
        "discounts granted, without their taxes.")
    early_discount_journal = fields.Many2One(
        'account.journal', "Early-Payment Discount Journal",
        help="The journal of the moves that grant early-payment discounts.")
    on_time_reward_rate = fields.Numeric(
        "On-Time Reward Rate", digits=(None, 4),
        help="Credit reliable customers this share of the invoices they "
        "paid on time in the quarter: 0.005 for 0.5%.\n"
        "Leave empty to propose no reward.")
    on_time_reward_product = fields.Many2One(
        'product.product', "On-Time Reward Product",
        domain=[('type', '=', 'service')],
        help="The service on the line of the reward credit notes.")
    on_time_reward_minimum = fields.Numeric(
        "On-Time Reward Minimum", digits=(16, 2),
        help="Rewards below this amount are not proposed.")

    @classmethod
    def validate_fields(cls, configurations, field_names):
        super().validate_fields(configurations, field_names)
        if field_names & {'on_time_reward_rate', 'on_time_reward_product',
                'on_time_reward_minimum'}:
            for configuration in configurations:
                configuration.check_on_time_reward()
        if field_names & {'early_discount_account', 'early_discount_journal'}:
            for configuration in configurations:
                configuration.check_early_discount_account()

    def check_on_time_reward(self):
        rate = self.on_time_reward_rate
        if rate is not None and not (0 <= rate < 1):
            raise ValidationError(gettext(
                    'dunning_advanced.msg_on_time_reward_rate_range',
                    rate=rate))
        if (self.on_time_reward_minimum is not None
                and self.on_time_reward_minimum < 0):
            raise ValidationError(gettext(
                    'dunning_advanced.msg_on_time_reward_minimum_negative'))
        if rate and not self.on_time_reward_product:
            raise ValidationError(gettext(
                    'dunning_advanced.msg_on_time_reward_without_product'))
        if self.on_time_reward_product:
            try:
                account = self.on_time_reward_product.account_revenue_used
            except UserError:
                account = None
            if not account:
                raise ValidationError(gettext(
                        'dunning_advanced.msg_on_time_reward_product_account',
                        product=self.on_time_reward_product.rec_name))

    def check_early_discount_account(self):
        "Refuse to remove the account while a payment term offers discounts"
        pool = Pool()
        PaymentTerm = pool.get('account.invoice.payment_term')
        if self.early_discount_account and self.early_discount_journal:
            return
        terms = PaymentTerm.search([
                ('early_discount_rate', '!=', None),
                ], limit=1)
        if terms:
            term, = terms
            raise ValidationError(gettext(
                    'dunning_advanced.msg_early_discount_without_account',
                    payment_term=term.rec_name))


@dataclass(frozen=True)
class Offer:
    "The early-payment discount a payment term offers on one invoice"
    invoice: int
    invoice_date: dt.date
    total: Decimal
    discount: Decimal
    deadline: dt.date

    @property
    def amount_to_pay(self):
        return self.total - self.discount


@dataclass(frozen=True)
class EarlyDiscount:
    """A discount to grant: what remains due on an invoice paid in time, the
    date of the payment and the payment lines to reconcile"""
    invoice: int
    amount: Decimal
    date: dt.date
    payment_lines: tuple


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    # A payment booked this long after the discount deadline is not looked
    # at any more, so that the daily run reads only the recent invoices.
    early_discount_lookback = dt.timedelta(days=31)

    @classmethod
    def _early_discount_query(cls):
        "The posted customer invoices whose payment term has a discount"
        pool = Pool()
        PaymentTerm = pool.get('account.invoice.payment_term')
        invoice = cls.__table__()
        term = PaymentTerm.__table__()
        query = invoice.join(term, condition=term.id == invoice.payment_term)
        where = ((invoice.type == 'out')
            & (invoice.state == 'posted')
            & (invoice.invoice_date != Null)
            & (term.early_discount_rate != Null)
            & (term.early_discount_days != Null))
        columns = [invoice.id, invoice.invoice_date, invoice.currency,
            invoice.total_amount_cache, term.early_discount_rate,
            term.early_discount_days]
        return invoice, query, where, columns

    @classmethod
    def _early_discount_offers(cls, rows):
        "Return {invoice id: Offer} for the rows of _early_discount_query"
        pool = Pool()
        Currency = pool.get('currency.currency')
        currencies = {c.id: c for c in Currency.browse(
                list({r[2] for r in rows}))}
        # Posting stores the total in a cache; read the others (none
        # usually) through the ORM, all at once.
        totals = {i.id: i.total_amount for i in cls.browse(
                [r[0] for r in rows if r[3] is None])}
        offers = {}
        for invoice_id, invoice_date, currency_id, total, rate, days in rows:
            total = totals[invoice_id] if total is None else _decimal(total)
            if total <= 0:
                continue
            offers[invoice_id] = Offer(
                invoice=invoice_id, invoice_date=invoice_date, total=total,
                discount=currencies[currency_id].round(
                    total * _decimal(rate)),
                deadline=invoice_date + dt.timedelta(days=days))
        return offers

    @classmethod
    def _early_discount_settled(cls, invoice_ids):
        """The invoices among invoice_ids that are not wholly unpaid: with a
        payment line or an instalment reconciled"""
        pool = Pool()
        PaymentLine = pool.get('account.invoice-account.move.line')
        payment_line = PaymentLine.__table__()
        cursor = Transaction().connection.cursor()
        settled = set()
        for sub in chunks(invoice_ids):
            cursor.execute(*payment_line.select(payment_line.invoice,
                    where=in_(payment_line.invoice, sub),
                    group_by=[payment_line.invoice]))
            settled.update(i for i, in cursor)
            to_pay = cls._query_lines_to_pay(sub)
            cursor.execute(*to_pay.select(to_pay.invoice,
                    where=to_pay.reconciliation != Null,
                    group_by=[to_pay.invoice]))
            settled.update(i for i, in cursor)
        return settled

    @classmethod
    def early_discount_offers(cls, invoices, date):
        """Return {invoice id: (discount, amount to pay, deadline)} for the
        invoices the customer may still pay with the discount on date.

        They are the posted customer invoices, wholly unpaid, whose payment
        term has a discount whose deadline (invoice date + days) is not
        past. The amounts are in the invoice currency. A constant number of
        queries whatever the number of invoices.
        """
        invoice, query, where, columns = cls._early_discount_query()
        cursor = Transaction().connection.cursor()
        rows = []
        for sub in chunks(sorted({int(i) for i in invoices})):
            cursor.execute(*query.select(*columns,
                    where=where & in_(invoice.id, sub)))
            rows.extend(cursor)
        offers = {i: o for i, o in cls._early_discount_offers(rows).items()
            if o.deadline >= date}
        settled = cls._early_discount_settled(list(offers))
        return {i: (o.discount, o.amount_to_pay, o.deadline)
            for i, o in offers.items() if i not in settled}

    @classmethod
    def _early_discount_longest_days(cls):
        pool = Pool()
        PaymentTerm = pool.get('account.invoice.payment_term')
        term = PaymentTerm.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*term.select(Max(term.early_discount_days),
                where=term.early_discount_rate != Null))
        days, = cursor.fetchone()
        return days

    @classmethod
    def _early_discounts_earned(cls, company, date):
        """Return the EarlyDiscount of the invoices of company paid in time,
        known on date.

        An invoice qualifies while no instalment of it is reconciled when:
        - its payment lines dated on or before the deadline cover the amount
          to pay and what remains due is at most the discount (the Pay
          wizard's partial payment), or
        - it has no payment line and the party has an unallocated payment of
          exactly the amount to pay on its receivable account, dated between
          the invoice date and the deadline.
        What remains due is granted.

        Only invoices in the company currency are looked at: the discount
        move would need a rate for the others.
        """
        pool = Pool()
        Line = pool.get('account.move.line')
        Move = pool.get('account.move')
        PaymentLine = pool.get('account.invoice-account.move.line')
        line = Line.__table__()
        move = Move.__table__()
        payment_line = PaymentLine.__table__()
        cursor = Transaction().connection.cursor()

        longest = cls._early_discount_longest_days()
        if longest is None:
            return []
        invoice, query, where, columns = cls._early_discount_query()
        oldest = date - cls.early_discount_lookback - dt.timedelta(
            days=longest)
        cursor.execute(*query.select(*columns, invoice.party, invoice.account,
                where=where
                & (invoice.company == company.id)
                & (invoice.currency == company.currency.id)
                & (invoice.invoice_date >= oldest)
                & (invoice.invoice_date <= date)))
        rows = cursor.fetchall()
        offers = cls._early_discount_offers([r[:6] for r in rows])
        receivable = {r[0]: (r[6], r[7]) for r in rows}
        invoice_ids = [i for i, o in offers.items()
            if o.deadline + cls.early_discount_lookback >= date]

        due = defaultdict(Decimal)
        reconciled = set()
        payments = defaultdict(list)
        for sub in chunks(invoice_ids):
            to_pay = cls._query_lines_to_pay(sub)
            cursor.execute(*to_pay.join(line,
                    condition=line.id == to_pay.line).select(
                    to_pay.invoice, line.debit, line.credit,
                    line.reconciliation))
            for invoice_id, debit, credit, reconciliation in cursor:
                if reconciliation:
                    reconciled.add(invoice_id)
                due[invoice_id] += _decimal(debit) - _decimal(credit)
            cursor.execute(*payment_line
                .join(line, condition=line.id == payment_line.line)
                .join(move, condition=move.id == line.move)
                .select(payment_line.invoice, line.id, line.debit,
                    line.credit, move.date,
                    where=in_(payment_line.invoice, sub)
                    & (line.reconciliation == Null)
                    & (move.state == 'posted')))
            for invoice_id, line_id, debit, credit, paid_on in cursor:
                payments[invoice_id].append(
                    (line_id, _decimal(credit) - _decimal(debit), paid_on))

        earned, unallocated = [], []
        for invoice_id in invoice_ids:
            if invoice_id in reconciled:
                continue
            offer = offers[invoice_id]
            paid = payments.get(invoice_id)
            if not paid:
                unallocated.append(offer)
                continue
            in_time = [p for p in paid if p[2] <= offer.deadline]
            remaining = due[invoice_id] - sum(p[1] for p in paid)
            if (sum(p[1] for p in in_time) >= offer.amount_to_pay
                    and 0 < remaining <= offer.discount):
                earned.append(EarlyDiscount(
                        invoice=invoice_id, amount=remaining,
                        date=max(p[2] for p in in_time),
                        payment_lines=tuple(p[0] for p in paid)))
        if unallocated:
            earned.extend(cls._early_discounts_unallocated(
                    company, unallocated, due, receivable))
        return earned

    @classmethod
    def _early_discounts_unallocated(cls, company, offers, due, receivable):
        """Match the offers with an unallocated payment of exactly their
        amount to pay, each payment used once, the earliest deadline first.

        receivable is {invoice id: (party id, account id)}."""
        pool = Pool()
        Line = pool.get('account.move.line')
        Move = pool.get('account.move')
        PaymentLine = pool.get('account.invoice-account.move.line')
        line = Line.__table__()
        move = Move.__table__()
        payment_line = PaymentLine.__table__()
        cursor = Transaction().connection.cursor()

        accounts = sorted({receivable[o.invoice][1] for o in offers})
        start = min(o.invoice_date for o in offers)
        end = max(o.deadline for o in offers)
        payments = defaultdict(list)
        for sub in chunks(sorted({receivable[o.invoice][0] for o in offers})):
            cursor.execute(*line.join(move, condition=move.id == line.move)
                .select(line.id, line.party, line.account, line.debit,
                    line.credit, move.date,
                    where=in_(line.party, sub)
                    & line.account.in_(accounts)
                    & (line.reconciliation == Null)
                    & (line.credit > line.debit)
                    & (move.state == 'posted')
                    & (move.company == company.id)
                    & (move.date >= start) & (move.date <= end)
                    & ~line.id.in_(payment_line.select(payment_line.line)),
                    order_by=[move.date, line.id]))
            for line_id, party_id, account_id, debit, credit, paid_on in (
                    cursor):
                amount = _decimal(credit) - _decimal(debit)
                payments[(party_id, account_id, amount)].append(
                    (line_id, paid_on))

        earned, used = [], set()
        for offer in sorted(offers, key=lambda o: (o.deadline, o.invoice)):
            remaining = due[offer.invoice] - offer.amount_to_pay
            if not (0 < remaining <= offer.discount):
                continue
            key = receivable[offer.invoice] + (offer.amount_to_pay,)
            for line_id, paid_on in payments.get(key, []):
                if (line_id not in used
                        and offer.invoice_date <= paid_on <= offer.deadline):
                    used.add(line_id)
                    earned.append(EarlyDiscount(
                            invoice=offer.invoice, amount=remaining,
                            date=paid_on, payment_lines=(line_id,)))
                    break
        return earned

    @classmethod
    def apply_early_discounts(cls, company, date):
        """Grant the early-payment discounts the customers of company earned
        and reconcile their invoices; return the invoices.

        The discount move is dated on the payment date, so that the tax
        decrease is declared with the payment's period; when that period is
        closed, on date. Applying again finds nothing: the invoices are
        reconciled.
        """
        pool = Pool()
        Configuration = pool.get('account.configuration')
        Line = pool.get('account.move.line')
        Move = pool.get('account.move')
        Audit = pool.get('account.dunning.audit')
        Lang = pool.get('ir.lang')
        config = Configuration(1)
        if not (config.early_discount_account
                and config.early_discount_journal):
            return []
        earned = cls._early_discounts_earned(company, date)
        if not earned:
            return []
        invoices = cls.browse([d.invoice for d in earned])
        moves = [i._get_early_discount_move(d, config, date)
            for i, d in zip(invoices, earned)]
        Move.save(moves)
        Move.post(moves)

        payment_lines = {l.id: l for l in Line.browse(
                [l for d in earned for l in d.payment_lines])}
        to_reconcile = []
        for invoice, discount, move in zip(invoices, earned, moves):
            to_reconcile.append(
                [l for l in invoice.lines_to_pay if not l.reconciliation]
                + [payment_lines[l] for l in discount.payment_lines]
                + [l for l in move.lines if l.account == invoice.account])
        Line.reconcile(*to_reconcile)

        lang = Lang.get()
        Audit.record([Audit.entry('early_discount', party=invoice.party,
                    lines=[l.id for l in invoice.lines_to_pay],
                    amount=discount.amount, date=move.date,
                    reason=gettext('dunning_advanced.msg_early_discount_audit',
                        invoice=invoice.rec_name,
                        date=lang.strftime(discount.date),
                        move=move.rec_name))
                for invoice, discount, move in zip(invoices, earned, moves)])
        return invoices

    def _early_discount_shares(self, amount):
        """Split amount in proportion to the untaxed amount and each tax of
        the invoice; return (untaxed share, [(invoice tax, tax share, base
        share)]).

        Each tax share is rounded and the untaxed share takes the rounding
        remainder, so the shares sum to amount. The base share of a tax
        computed on the whole untaxed amount is the untaxed share itself.
        """
        currency = self.currency
        total = self.total_amount
        taxes = [(t, currency.round(t.amount * amount / total))
            for t in self.taxes]
        untaxed = amount - sum((s for _, s in taxes), Decimal(0))
        shares = []
        for tax, share in taxes:
            if tax.base == self.untaxed_amount:
                base = untaxed
            else:
                base = currency.round(tax.base * amount / total)
            shares.append((tax, share, base))
        return untaxed, shares

    def _get_early_discount_move(self, discount, config, date):
        """The move granting discount: it credits the receivable and debits
        the discount account and the taxes by their share, with tax lines
        that decrease the tax declared"""
        pool = Pool()
        Move = pool.get('account.move')
        Line = pool.get('account.move.line')
        TaxLine = pool.get('account.tax.line')
        Period = pool.get('account.period')
        try:
            period = Period.find(self.company, date=discount.date)
            move_date = discount.date
        except PeriodNotFoundError:
            period = Period.find(self.company, date=date)
            move_date = date

        def line(account, amount, tax_lines):
            return Line(account=account,
                debit=amount if amount > 0 else 0,
                credit=-amount if amount < 0 else 0,
                party=self.party if account.party_required else None,
                tax_lines=tax_lines)

        untaxed, taxes = self._early_discount_shares(discount.amount)
        lines = [line(self.account, -discount.amount, [])]
        base_lines = [TaxLine(type='base', tax=t.tax, amount=-base)
            for t, _, base in taxes if t.tax]
        if untaxed or base_lines:
            lines.append(
                line(config.early_discount_account, untaxed, base_lines))
        for tax, share, _ in taxes:
            if share:
                lines.append(line(tax.account, share,
                        [TaxLine(type='tax', tax=tax.tax, amount=-share)]
                        if tax.tax else []))
        return Move(
            company=self.company, journal=config.early_discount_journal,
            period=period, date=move_date, origin=self,
            description=gettext('dunning_advanced.msg_early_discount_move',
                invoice=self.rec_name),
            lines=lines)


class Run(metaclass=PoolMeta):
    __name__ = 'account.dunning.run'

    @classmethod
    def execute(cls, date, send=True, batch_size=None):
        """Grant the early-payment discounts first, in their own
        transaction, so that no reminder asks for a discount the customer
        earned"""
        pool = Pool()
        Company = pool.get('company.company')
        Invoice = pool.get('account.invoice')
        company = Company(Transaction().context['company'])
        cls.check_date(company, date)
        Invoice.apply_early_discounts(company, date)
        cls._commit()
        return super().execute(date, send=send, batch_size=batch_size)


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('account.dunning.reward|propose_last_quarter',
                "Propose On-Time Rewards"))


class Reward(ModelSQL, ModelView):
    "Dunning On-Time Reward"
    __name__ = 'account.dunning.reward'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    start = fields.Date("Start", required=True, readonly=True)
    end = fields.Date("End", required=True, readonly=True)
    currency = fields.Function(fields.Many2One(
            'currency.currency', "Currency"), 'on_change_with_currency')
    paid_on_time = Monetary(
        "Paid on Time", currency='currency', digits='currency',
        readonly=True,
        help="The invoices of the period paid on or before their due date.")
    rate = fields.Numeric("Rate", digits=(None, 4), readonly=True)
    amount = Monetary(
        "Amount", currency='currency', digits='currency', readonly=True,
        help="The credit: the rate of the amount paid on time.")
    credit_note = fields.Many2One(
        'account.invoice', "Credit Note", readonly=True, ondelete='SET NULL',
        domain=[
            ('company', '=', Eval('company', -1)),
            ('type', '=', 'out'),
            ])
    state = fields.Function(fields.Selection([
                ('proposed', "Proposed"),
                ('validated', "Validated"),
                ('cancelled', "Cancelled"),
                ], "State",
            help="Proposed while the credit note is a draft, validated once "
            "it is posted, cancelled when it is cancelled or deleted."),
        'get_state', searcher='search_state')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('company_party_start_unique',
                Unique(t, t.company, t.party, t.start),
                'dunning_advanced.msg_on_time_reward_unique'),
            ]
        cls._order = [('start', 'DESC'), ('id', 'DESC')]

    @fields.depends('company')
    def on_change_with_currency(self, name=None):
        return self.company.currency if self.company else None

    def get_rec_name(self, name):
        period = self.period_name(self.start, self.end)
        return f'{self.party.rec_name} - {period}'

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('party.rec_name', *clause[1:])]

    def get_state(self, name):
        state = self.credit_note.state if self.credit_note else 'cancelled'
        if state in {'posted', 'paid'}:
            return 'validated'
        elif state == 'cancelled':
            return 'cancelled'
        return 'proposed'

    @classmethod
    def search_state(cls, name, clause):
        _, operator, value = clause[:3]
        domains = {
            'proposed': [('credit_note.state', 'in', ['draft', 'validated'])],
            'validated': [('credit_note.state', 'in', ['posted', 'paid'])],
            'cancelled': ['OR',
                ('credit_note', '=', None),
                ('credit_note.state', '=', 'cancelled'),
                ],
            }
        values = {value} if operator in {'=', '!='} else set(value or [])
        if operator in {'!=', 'not in'}:
            values = set(domains) - values
        values &= set(domains)
        if not values:
            return [('id', '=', None)]
        return ['OR', *(domains[v] for v in sorted(values))]

    @staticmethod
    def quarter_before(date):
        "The first and last day of the quarter before the one of date"
        end = date.replace(month=(date.month - 1) // 3 * 3 + 1, day=1
            ) - dt.timedelta(days=1)
        return end.replace(month=end.month - 2, day=1), end

    @classmethod
    def period_name(cls, start, end):
        pool = Pool()
        Lang = pool.get('ir.lang')
        if start.day == 1 and start.month % 3 == 1 and (
                cls.quarter_before(end + dt.timedelta(days=1))
                == (start, end)):
            return gettext('dunning_advanced.msg_on_time_reward_quarter',
                quarter=(start.month - 1) // 3 + 1, year=start.year)
        lang = Lang.get()
        return gettext('dunning_advanced.msg_on_time_reward_period',
            start=lang.strftime(start), end=lang.strftime(end))

    @classmethod
    def propose_last_quarter(cls, date=None):
        """Cron entry point: propose the rewards of the quarter before date
        for the context company, once: not when some were proposed already"""
        pool = Pool()
        Company = pool.get('company.company')
        Date = pool.get('ir.date')
        company_id = Transaction().context.get('company')
        if not company_id:
            return []
        company = Company(company_id)
        if date is None:
            date = Date.today()
        start, end = cls.quarter_before(date)
        if cls.search([
                    ('company', '=', company.id),
                    ('start', '=', start),
                    ], limit=1):
            return []
        return cls.propose(company, start, end)

    @classmethod
    def _paid_on_time(cls, company, start, end, party_ids):
        """Return {party id: amount} of the instalments of the customer
        invoices of company paid in full from start to end on or before
        their maturity date.

        The date of the reconciliation is the date of payment. Invoices
        settled by a credit note or cancelled were not paid.
        """
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Line = pool.get('account.move.line')
        Reconciliation = pool.get('account.move.reconciliation')
        invoice = Invoice.__table__()
        credit_note = Invoice.__table__()
        line = Line.__table__()
        credit_line = Line.__table__()
        reconciliation = Reconciliation.__table__()
        cursor = Transaction().connection.cursor()

        credited = credit_line.join(credit_note,
            condition=credit_note.move == credit_line.move).select(
            credit_line.reconciliation,
            where=(credit_line.credit > credit_line.debit)
            & (credit_line.reconciliation != Null))
        query = (invoice
            .join(line, condition=(line.move == invoice.move)
                & (line.account == invoice.account))
            .join(reconciliation,
                condition=reconciliation.id == line.reconciliation))
        paid = defaultdict(Decimal)
        for sub in chunks(party_ids):
            cursor.execute(*query.select(invoice.party, line.debit,
                    line.credit,
                    where=(invoice.company == company.id)
                    & (invoice.type == 'out')
                    & invoice.state.in_(['posted', 'paid'])
                    & in_(invoice.party, sub)
                    & (line.debit > line.credit)
                    & (line.maturity_date != Null)
                    & (reconciliation.date >= start)
                    & (reconciliation.date <= end)
                    & (reconciliation.date <= line.maturity_date)
                    & ~line.reconciliation.in_(credited)))
            for party_id, debit, credit in cursor:
                paid[party_id] += _decimal(debit) - _decimal(credit)
        return paid

    @classmethod
    def propose(cls, company, start, end):
        """Propose a draft credit note to each reliable customer of company
        for the invoices it paid on time from start to end; return the
        rewards proposed.

        A customer gets one reward for a period start: proposing again does
        nothing. Rewards below the configured minimum are not proposed.
        """
        pool = Pool()
        Configuration = pool.get('account.configuration')
        Invoice = pool.get('account.invoice')
        Party = pool.get('party.party')
        Audit = pool.get('account.dunning.audit')
        reward = cls.__table__()
        cursor = Transaction().connection.cursor()
        config = Configuration(1)
        rate = config.on_time_reward_rate
        product = config.on_time_reward_product
        if not rate or not product:
            return []
        with Transaction().set_context(company=company.id):
            party_ids = list(map(int, Party.search(
                        [('dunning_segment', '=', 'reliable')])))
        cursor.execute(*reward.select(reward.party,
                where=(reward.company == company.id)
                & (reward.start == start)))
        proposed = {p for p, in cursor}
        paid = cls._paid_on_time(company, start, end,
            [p for p in party_ids if p not in proposed])

        minimum = config.on_time_reward_minimum
        rewards = []
        for party_id, paid_on_time in sorted(paid.items()):
            amount = company.currency.round(paid_on_time * rate)
            if amount <= 0 or (minimum is not None and amount < minimum):
                continue
            rewards.append(cls(company=company, party=party_id, start=start,
                    end=end, paid_on_time=paid_on_time, rate=rate,
                    amount=amount))
        if not rewards:
            return []
        description = gettext(
            'dunning_advanced.msg_on_time_reward_description',
            period=cls.period_name(start, end))
        credit_notes = [r._get_credit_note(product, description)
            for r in rewards]
        Invoice.save(credit_notes)
        for reward_, credit_note in zip(rewards, credit_notes):
            reward_.credit_note = credit_note
        cls.save(rewards)
        Audit.record([Audit.entry('reward_proposed', party=r.party,
                    amount=r.amount, date=end,
                    reason=f'{description}: {r.paid_on_time} x {r.rate}')
                for r in rewards])
        return rewards

    def _get_credit_note(self, product, description):
        "A draft credit note of amount for the party, one line of product"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Line = pool.get('account.invoice.line')
        credit_note = Invoice(
            company=self.company, type='out', party=self.party,
            currency=self.company.currency, description=description)
        credit_note.on_change_type()
        line = Line(
            invoice=credit_note, company=self.company,
            currency=self.company.currency, type='line', product=product,
            description=description)
        line.on_change_product()
        # A credit note is an invoice of negative quantities in Tryton.
        line.quantity = -1
        line.unit_price = self.amount
        credit_note.lines = [line]
        return credit_note
