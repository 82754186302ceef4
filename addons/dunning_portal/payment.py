"""Card payments from the portal, recorded and reconciled in the ledger.

A customer pays one or several invoices, or part of them, in one Stripe
payment: one ``account.payment`` of the company's Stripe journal whose
allocations say how much goes to each invoice. account_payment_stripe takes
the card (a PaymentIntent) and learns of the outcome from Stripe's signed
events; account_payment_clearing books the payment when it succeeds. The
clearing move has one receivable line per allocation: a line that settles
its invoice is reconciled with it, a smaller one is added to the invoice's
payment lines, which lowers what is left to pay and what the next reminder
asks for. A payment that fails afterwards (a dispute lost, a refund) undoes
its move and the invoices reopen.
"""
from collections import defaultdict
from decimal import Decimal

import stripe

from trytond import config as trytond_config
from trytond.i18n import gettext
from trytond.model import (
    ModelSQL, ModelView, Unique, Workflow, fields)
from trytond.model.exceptions import ValidationError
from trytond.modules.account_payment_stripe.payment import STRIPE_VERSION
from trytond.modules.company.model import CompanyValueMixin
from trytond.modules.currency.fields import Monetary
from trytond.modules.dunning_advanced.engine.allocation import Due, spread
from trytond.modules.dunning_advanced.entered import EnteredValuesMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import without_check_access

from . import live

if api_base := trytond_config.get('dunning_portal', 'stripe_api_base'):
    # A local Stripe for a demo in test mode: the SDK sends every call there.
    stripe.api_base = api_base

# The states of a PaymentIntent whose card is being or was charged
CHARGING = {'processing', 'requires_capture', 'succeeded'}
PAYMENT_FIELDS = {'portal_payment_journal', 'portal_payment_minimum'}


def _journal():
    return fields.Many2One('account.payment.journal', "Card Payment Journal",
        domain=[
            ('process_method', '=', 'stripe'),
            ('company', '=', Eval('context', {}).get('company', -1)),
            ],
        help="The Stripe journal of the card payments made in the portal: "
        "its Stripe account takes the cards, its clearing account records "
        "them. Leave empty and the portal offers no card payment.")


def _minimum():
    return fields.Numeric("Minimum Partial Card Payment",
        domain=['OR',
            ('portal_payment_minimum', '=', None),
            ('portal_payment_minimum', '>=', 0),
            ],
        help="In the company's currency: a customer paying part of the "
        "chosen invoices pays at least this; paying them in full is always "
        "allowed.")


class Configuration(metaclass=PoolMeta):
    __name__ = 'account.configuration'
    portal_payment_journal = fields.MultiValue(_journal())
    portal_payment_minimum = fields.MultiValue(_minimum())

    @classmethod
    def multivalue_model(cls, field):
        pool = Pool()
        if field in PAYMENT_FIELDS:
            return pool.get('account.configuration.dunning_portal_payment')
        return super().multivalue_model(field)

    @without_check_access
    def card_payment_settings(self, company):
        """The card payments of company: the journal (None when card
        payment is not usable) and the minimum partial payment. Read
        without access rights: the customer reads the company's settings,
        not the accounting ones."""
        journal = self.get_multivalue(
            'portal_payment_journal', company=company.id)
        Value = Pool().get('account.configuration.dunning_portal_payment')
        if journal and not Value.journal_problem(journal):
            usable = journal
        else:
            usable = None
        minimum = self.get_multivalue(
            'portal_payment_minimum', company=company.id)
        return {
            'journal': usable,
            'minimum': company.currency.round(minimum) if minimum else None,
            }


class ConfigurationPortalPayment(
        EnteredValuesMixin, ModelSQL, CompanyValueMixin):
    "Account Configuration Portal Card Payment"
    __name__ = 'account.configuration.dunning_portal_payment'
    portal_payment_journal = _journal()
    portal_payment_minimum = _minimum()

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        for record in records:
            journal = record.portal_payment_journal
            if journal and (problem := cls.journal_problem(journal)):
                raise ValidationError(problem)

    @staticmethod
    def journal_problem(journal):
        "Why journal cannot take the portal's card payments, or None"
        account = journal.stripe_account
        if not (journal.clearing_account and journal.clearing_journal):
            return gettext('dunning_portal.msg_card_journal_clearing',
                journal=journal.rec_name)
        if account.webhook_identifier and not account.webhook_signing_secret:
            return gettext('dunning_portal.msg_card_webhook_unsigned',
                account=account.rec_name)


class Payment(metaclass=PoolMeta):
    __name__ = 'account.payment'
    portal_allocations = fields.One2Many(
        'account.payment.allocation', 'payment', "Invoices Paid",
        readonly=True,
        help="The invoices the customer paid with this payment in the "
        "portal, and how much of each.")
    portal_user = fields.Many2One('web.user', "Portal User", readonly=True,
        ondelete='SET NULL',
        states={
            'invisible': ~Eval('portal_user'),
            },
        help="The customer's login that made the payment in the portal.")

    @classmethod
    def portal_pay(cls, journal, user, allocations, amount):
        """Create the card payment of the web user's party for the
        [(invoice, amount)] allocations and open its PaymentIntent; the
        same payment again when one is still waiting for the card."""
        pool = Pool()
        Allocation = pool.get('account.payment.allocation')
        Date = pool.get('ir.date')
        if waiting := cls.portal_waiting(journal, user.party, allocations):
            return waiting
        if paying := cls.portal_replace(journal, user.party, allocations):
            return paying
        invoices = [invoice for invoice, _ in allocations]
        payment = cls(company=journal.company, journal=journal,
            kind='receivable', party=user.party, amount=amount,
            date=Date.today(), account=invoices[0].account,
            reference=', '.join(i.number for i in invoices),
            portal_user=user,
            portal_allocations=[Allocation(invoice=invoice, amount=part)
                for invoice, part in allocations])
        payment.save()
        cls.submit([payment])
        cls.stripe_checkout([payment])
        cls.process([payment])
        return payment

    @classmethod
    def portal_replace(cls, journal, party, allocations):
        """Cancel the PaymentIntents of the party's other payments still
        awaiting a card for any of the invoices, so that a new amount
        leaves only one open: the customer cannot pay both. Return the
        one whose card Stripe is already charging, which no cancel stops."""
        open_ = cls.search([
                ('journal', '=', journal.id),
                ('party', '=', party.id),
                ('state', '=', 'processing'),
                ('portal_allocations.invoice', 'in',
                    [i.id for i, _ in allocations]),
                ('stripe_captured', '=', False),
                ], order=[('id', 'DESC')])
        cancelled = []
        for payment in open_:
            intent = payment.stripe_intent
            if intent is None:
                continue
            if intent.status in CHARGING:
                return payment
            if intent.status != 'canceled':
                stripe.PaymentIntent.cancel(intent.id,
                    cancellation_reason='abandoned',
                    api_key=payment.journal.stripe_account.secret_key,
                    stripe_version=STRIPE_VERSION)
            cancelled.append(payment)
        if cancelled:
            cls.fail(cancelled)

    @classmethod
    def portal_waiting(cls, journal, party, allocations):
        "The party's payment of the same allocations still awaiting a card"
        wanted = sorted((i.id, a) for i, a in allocations)
        for payment in cls.search([
                    ('journal', '=', journal.id),
                    ('party', '=', party.id),
                    ('state', '=', 'processing'),
                    ('portal_allocations.invoice', 'in',
                        [i for i, _ in wanted]),
                    ('stripe_captured', '=', False),
                    ], order=[('id', 'DESC')]):
            if sorted((a.invoice.id, a.amount)
                    for a in payment.portal_allocations) == wanted:
                return payment

    def _get_clearing_move(self, date=None):
        move = super()._get_clearing_move(date=date)
        if (move and self.portal_allocations and not self.clearing_move):
            self._split_clearing_move(move)
        return move

    def _split_clearing_move(self, move):
        """Replace the receivable line of move by one line per allocation,
        in the order of the invoices' due dates: a payment lowered by a
        refund pays the oldest first, and what is beyond the invoices stays
        on the party's account"""
        pool = Pool()
        Line = pool.get('account.move.line')
        receivable, = [l for l in move.lines
            if l.account == self.clearing_account]
        others = [l for l in move.lines if l is not receivable]
        by_id = {a.id: a for a in self.portal_allocations}
        parts = spread([Due(a.id, a.amount, a.invoice.earliest_due_date())
                for a in self.portal_allocations], self.amount)
        amounts = [p.amount for p in parts]
        origins = [by_id[p.invoice_id] for p in parts]
        if rest := self.amount - sum(amounts):
            amounts.append(rest)
            origins.append(None)
        credits = self._company_amounts(
            amounts, receivable.credit - receivable.debit)
        # Set only when the journal's currency is not the company's
        second_currency = getattr(receivable, 'second_currency', None)
        lines = []
        for allocation, amount, credit in zip(origins, amounts, credits):
            line = Line(account=receivable.account, party=receivable.party,
                debit=Decimal(0), credit=credit)
            if allocation:
                line.account = allocation.invoice.account
                line.party = allocation.invoice.party
                line.origin = allocation
                line.description = allocation.invoice.number
            if second_currency:
                line.second_currency = second_currency
                line.amount_second_currency = -amount
            lines.append(line)
        move.lines = others + lines

    def _company_amounts(self, amounts, total):
        """amounts of the payment's currency in the company's, summing to
        total: the last one takes the rounding"""
        if self.journal.currency == self.company.currency:
            return amounts
        round_ = self.company.currency.round
        converted = [round_(a * total / self.amount) for a in amounts]
        converted[-1] += total - sum(converted)
        return converted

    @classmethod
    @ModelView.button
    @Workflow.transition('succeeded')
    def succeed(cls, payments):
        pool = Pool()
        Move = pool.get('account.move')
        super().succeed(payments)
        portal = [p for p in payments
            if p.portal_allocations and p.clearing_move]
        # Posted at once: the daily run and the invoices count only posted
        # lines, and nobody has to post a card payment the bank confirmed.
        Move.post([p.clearing_move for p in portal
                if p.clearing_move.state == 'draft'])
        cls.settle_invoices(portal)
        live.publish([p.party.id for p in portal])

    @classmethod
    def settle_invoices(cls, payments):
        """Reconcile each allocation line with its invoice when it pays all
        that is left, else add it to the invoice's payment lines. What an
        invoice paid meanwhile cannot take stays on the party's account."""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        Line = pool.get('account.move.line')
        Allocation = pool.get('account.payment.allocation')
        lines = [l for p in payments for l in p.clearing_move.lines
            if isinstance(l.origin, Allocation) and not l.reconciliation]
        # Undoing an earlier booking of the payment (a refund) reopened its
        # invoices in a queued task: their state must be read now.
        Invoice.process(list({l.origin.invoice for l in lines}))
        to_reconcile, to_add = [], defaultdict(list)
        for line in Line.browse([l.id for l in lines]):
            invoice = line.origin.invoice
            if invoice.state != 'posted':
                continue
            open_lines = [l for l in (
                    invoice.lines_to_pay + invoice.payment_lines)
                if not l.reconciliation]
            left = sum(invoice.amount_of(l) for l in open_lines)
            paid = -invoice.amount_of(line)
            if paid == left:
                to_reconcile.append(open_lines + [line])
            elif paid < left:
                to_add[invoice].append(line)
        Invoice.add_payment_lines(to_add)
        Line.reconcile(*to_reconcile)

    @classmethod
    @ModelView.button
    @Workflow.transition('processing')
    def proceed(cls, payments):
        cls.release_invoices(payments)
        super().proceed(payments)

    @classmethod
    @ModelView.button
    @Workflow.transition('failed')
    def fail(cls, payments):
        cls.release_invoices(payments)
        super().fail(payments)
        live.publish([p.party.id for p in payments if p.portal_allocations])

    @classmethod
    def release_invoices(cls, payments):
        """Take the lines of the clearing moves about to be undone off the
        invoices they partly paid: their cancellation pays nothing"""
        pool = Pool()
        PaymentLine = pool.get('account.invoice-account.move.line')
        lines = [l.id for p in payments
            if p.portal_allocations and p.clearing_move
            for l in p.clearing_move.lines]
        if lines:
            PaymentLine.delete(PaymentLine.search([('line', 'in', lines)]))

    @classmethod
    def copy(cls, payments, default=None):
        default = dict(default or {})
        default.setdefault('portal_allocations')
        default.setdefault('portal_user')
        return super().copy(payments, default=default)


class Allocation(ModelSQL, ModelView):
    "Payment Allocation"
    __name__ = 'account.payment.allocation'
    payment = fields.Many2One('account.payment', "Payment", required=True,
        ondelete='CASCADE')
    invoice = fields.Many2One('account.invoice', "Invoice", required=True,
        ondelete='RESTRICT',
        domain=[
            ('type', '=', 'out'),
            ])
    amount = Monetary("Amount", currency='currency', digits='currency',
        required=True,
        domain=[
            ('amount', '>', 0),
            ])
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('payment')

    @fields.depends('payment', '_parent_payment.currency')
    def on_change_with_currency(self, name=None):
        return self.payment.currency if self.payment else None

    def get_rec_name(self, name):
        return f'{self.invoice.rec_name} ({self.amount})'


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    def amount_of(self, line):
        "line's amount in the invoice's currency, as amount_to_pay reads it"
        if line.second_currency and line.second_currency == self.currency:
            return line.amount_second_currency
        return line.debit - line.credit

    def earliest_due_date(self):
        dates = [l.maturity_date for l in self.lines_to_pay
            if l.maturity_date and not l.reconciliation]
        return min(dates, default=self.invoice_date)


class MoveLine(metaclass=PoolMeta):
    __name__ = 'account.move.line'

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + ['account.payment.allocation']


class StripeAccount(metaclass=PoolMeta):
    __name__ = 'account.payment.stripe.account'

    def webhook(self, event):
        """Handle each event once: Stripe delivers an event again when it
        did not get the answer of the first delivery in time."""
        pool = Pool()
        Event = pool.get('account.payment.stripe.event')
        if Event.search([
                    ('account', '=', self.id),
                    ('stripe_id', '=', event.id),
                    ], limit=1):
            return True
        result = super().webhook(event)
        if result:
            Event.create([{
                        'account': self.id,
                        'stripe_id': event.id,
                        'type': event.type,
                        }])
        return result

    def webhook_payment_intent_succeeded(self, payload):
        intent = payload['object']
        payments = self._stripe_payments(intent_id=intent['id'])
        if payments and all(p.state == 'succeeded'
                and p.stripe_amount <= intent['amount_received']
                and p.stripe_captured == bool(intent['amount_received'])
                for p in payments):
            return True
        return super().webhook_payment_intent_succeeded(payload)

    def webhook_charge_succeeded(self, payload, _event='charge.succeeded'):
        charge = payload['object']
        payments = self._stripe_payments(charge_id=charge['id'],
            intent_id=getattr(charge, 'payment_intent', None))
        amount = charge['amount_captured'] - charge['amount_refunded']
        if (payments and charge['status'] == 'succeeded'
                and charge['captured']
                and all(p.state == 'succeeded'
                    and p.stripe_amount == amount and p.stripe_captured
                    for p in payments)):
            # The payment intent's event recorded it already: booking it
            # again would cancel and redo its clearing move.
            return True
        return super().webhook_charge_succeeded(payload, _event=_event)

    @classmethod
    def _stripe_payments(cls, charge_id=None, intent_id=None):
        "The payments of the charge, else of its payment intent"
        pool = Pool()
        Payment = pool.get('account.payment')
        payments = []
        if charge_id:
            payments = Payment.search([('stripe_charge_id', '=', charge_id)])
        if not payments and intent_id:
            payments = Payment.search([
                    ('stripe_payment_intent_id', '=', intent_id)])
        return payments


class StripeEvent(ModelSQL):
    "Stripe Event Handled"
    __name__ = 'account.payment.stripe.event'
    account = fields.Many2One('account.payment.stripe.account', "Account",
        required=True, ondelete='CASCADE')
    stripe_id = fields.Char("Stripe ID", required=True, strip=False)
    type = fields.Char("Type", required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('account_stripe_id_unique', Unique(t, t.account, t.stripe_id),
                'dunning_portal.msg_stripe_event_unique'),
            ]
