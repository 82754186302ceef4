"""Paying by card from the portal: choose the invoices and the amount, give
the card on Stripe's payment form, come back to the confirmation.

The card form is Stripe.js's Payment Element on the PaymentIntent that
account_payment_stripe opened for the payment; Stripe reports the outcome
to account_payment_stripe's webhook, which records the payment.
"""
import json
import re
from decimal import Decimal
from http import HTTPStatus

import stripe
from werkzeug.routing import UnicodeConverter

from trytond.i18n import gettext
from trytond.modules.account_payment_stripe import routes as stripe_routes
from trytond.modules.dunning_advanced.engine.allocation import (
    ABOVE_BALANCE, BELOW_MINIMUM, NO_INVOICE, NOT_POSITIVE, NOT_ROUNDED, Due,
    split_payment)
from trytond.protocols.wrappers import (
    Response, with_pool, with_transaction)
from trytond.transaction import Transaction
from trytond.wsgi import app

from .pages import invoice_statuses, open_invoices
from .portal import route, stripe_js
from .survey import survey_url

SEPARATORS = '.,'
# Stripe's events nest a dozen levels at most.
MAX_NESTING = 32
AMOUNT = re.compile(r'^-?\d+(\.\d+)?$')
THOUSANDS = re.compile(r'^-?\d{1,3}([.,]\d{3})+$')
REFUSALS = {
    NO_INVOICE: 'dunning_portal.msg_card_no_invoice',
    NOT_POSITIVE: 'dunning_portal.msg_card_amount_not_positive',
    NOT_ROUNDED: 'dunning_portal.msg_card_amount_not_rounded',
    ABOVE_BALANCE: 'dunning_portal.msg_card_amount_above_balance',
    BELOW_MINIMUM: 'dunning_portal.msg_card_amount_below_minimum',
    }


class StripeAccountConverter(UnicodeConverter):
    """The webhook identifier of a Stripe account: the lower weight has
    werkzeug try the portal's webhook rule before account_payment_stripe's
    rule of the same URL"""
    weight = UnicodeConverter.weight - 1


app.url_map.converters['stripe_account'] = StripeAccountConverter


def refuse(status, text):
    return Response(f"{text} Nothing was changed.", status=status,
        content_type='text/plain')


def nesting(value):
    "How deep lists and objects nest in value, counted without recursion"
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in value)
    return deepest


def event_problem(body):
    "What makes body no Stripe event, or None"
    try:
        event = json.loads(body)
    except RecursionError:
        return f"it nests more than {MAX_NESTING} levels deep"
    except ValueError as exception:
        return str(exception)
    if nesting(event) > MAX_NESTING:
        # The SDK builds its objects recursively: a deep one would fail it.
        return f"it nests more than {MAX_NESTING} levels deep"
    if not (isinstance(event, dict) and isinstance(event.get('id'), str)
            and isinstance(event.get('type'), str)):
        return "an object with an id and a type"


@with_pool
@with_transaction(readonly=True)
def delivery_problem(request, pool, identifier, body):
    """The answer to a delivery account_payment_stripe would fail on
    (unknown account) or refuse with a bare 400 (signature), else None"""
    Account = pool.get('account.payment.stripe.account')
    accounts = Account.search([('webhook_identifier', '=', identifier)])
    if len(accounts) != 1:
        return refuse(HTTPStatus.NOT_FOUND,
            "No Stripe account receives its events at this address.")
    secret = accounts[0].webhook_signing_secret
    if not secret:
        return
    header = request.headers.get('Stripe-Signature')
    if not header:
        return refuse(HTTPStatus.BAD_REQUEST,
            "The Stripe-Signature header is missing.")
    try:
        stripe.WebhookSignature.verify_header(body, header, secret,
            tolerance=stripe.Webhook.DEFAULT_TOLERANCE)
    except stripe.SignatureVerificationError as exception:
        return refuse(HTTPStatus.BAD_REQUEST,
            f"The Stripe-Signature header does not sign this body: "
            f"{exception.user_message or exception}.")


@app.route(
    '/<database_name>/account_payment_stripe/webhook/<stripe_account:account>',
    methods={'POST'})
def webhook(request, database_name, account):
    """account_payment_stripe's webhook, after saying what is wrong with a
    delivery it would refuse with a bare 400 or fail on with a 500"""
    body = request.get_data(as_text=True)
    if problem := event_problem(body):
        return refuse(HTTPStatus.BAD_REQUEST,
            f"The body of a Stripe event must be JSON: {problem}.")
    if response := delivery_problem(request, database_name, account, body):
        return response
    response = stripe_routes.webhooks_endpoint(
        request, database_name=database_name, account=account)
    if response.status_code == HTTPStatus.NOT_FOUND:
        # account_payment_stripe answers a bare 404 for an event of a
        # payment it does not know; Stripe shows the body to whoever looks.
        return refuse(HTTPStatus.NOT_FOUND,
            "No payment of this account matches the event.")
    return response


def payable_invoices(pool, portal, journal):
    """The customer's open invoices payable by card in the journal's
    currency: not disputed, oldest due first"""
    invoices = open_invoices(pool, portal)
    statuses = invoice_statuses(pool, portal.party, invoices)
    return [i for i in invoices
        if statuses[i['id']] != 'disputed'
        and i['currency'] == journal.currency]


def read_ids(values):
    "The invoice ids of a form or query; anything else is no invoice"
    ids = []
    for value in values:
        try:
            ids.append(int(value))
        except ValueError:
            ids.append(None)
    return ids


def read_amount(portal, text):
    """The amount the customer typed, None when empty; raise ValueError
    when it is not an amount. Read as people write money: 1,100.50,
    1 100,50, 100,50; a lone separator before three digits groups
    thousands when the customer's language groups them with it (1,100 is
    1100.00 in English, 1.10 in French)."""
    text = ''.join(text.split())
    if not text:
        return None
    marks = [c for c in text if c in SEPARATORS]
    grouping = portal.lang_record.thousands_sep
    if len(set(marks)) == 2:
        # 1,100.50 or 1.100,50: the last separator marks the decimals.
        decimal = marks[-1]
        thousands = SEPARATORS.replace(decimal, '')
    elif len(marks) > 1 or (
            marks and marks[0] == grouping and THOUSANDS.match(text)):
        decimal, thousands = None, marks[0]
    else:
        decimal, thousands = (marks[0] if marks else None), None
    if thousands:
        whole = text.rpartition(decimal)[0] if decimal else text
        if not THOUSANDS.match(whole):
            raise ValueError(text)
        text = text.replace(thousands, '')
    if decimal:
        text = text.replace(decimal, '.')
    if not AMOUNT.match(text):
        raise ValueError(text)
    return Decimal(text)


def customer_invoices(pool, portal, ids):
    "The customer's invoices among ids"
    Invoice = pool.get('account.invoice')
    return Invoice.search([
            ('id', 'in', [i for i in ids if i is not None]),
            ('party', '=', portal.party.id),
            ('company', '=', portal.company.id),
            ('type', '=', 'out'),
            ])


@route('/pay', methods=('GET', 'POST'))
def pay(request, pool, portal):
    Configuration = pool.get('account.configuration')
    configuration = Configuration(1)
    settings = configuration.card_payment_settings(portal.company)
    values = {
        'instructions': configuration.dunning_payment_instructions,
        'contact': configuration.dunning_contact,
        }
    journal = settings['journal']
    if not journal:
        return portal.render('pay_unavailable.html', **values)
    invoices = payable_invoices(pool, portal, journal)
    by_id = {i['id']: i for i in invoices}
    whole = request.form.get('whole') == '1'
    ids = read_ids(request.values.getlist('invoice'))
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        found = customer_invoices(pool, portal, unknown)
        if len(found) < len(set(unknown)):
            portal.not_found()
    values.update(invoices=invoices, minimum=settings['minimum'],
        total=sum(i['amount'] for i in invoices),
        currency=journal.currency,
        selected=set(by_id) if whole or not ids else set(ids),
        amount_text=request.form.get('amount', ''))
    if request.method != 'POST':
        return portal.render('pay.html', **values)

    def refuse(message):
        return portal.render('pay.html', status=HTTPStatus.BAD_REQUEST,
            error=message, **values)

    if unknown:
        return refuse(gettext('dunning_portal.msg_card_invoice_not_open',
                invoices=', '.join(i.number for i in found)))
    try:
        amount = None if whole else read_amount(portal, values['amount_text'])
    except ValueError:
        return refuse(gettext('dunning_portal.msg_card_amount_not_number',
                value=values['amount_text'].strip(),
                example=portal.money(Decimal('150'), journal.currency)))
    chosen = list(by_id) if whole else ids
    split = split_payment(
        [Due(i, by_id[i]['amount'], by_id[i]['maturity_date'])
            for i in dict.fromkeys(chosen)],
        amount, settings['minimum'], journal.currency.rounding)
    if split.error:
        limit = portal.money(split.limit, journal.currency) if (
            split.limit is not None) else ''
        # Formatting would round what is refused for its decimals.
        amount = (values['amount_text'].strip()
            if split.error == NOT_ROUNDED or split.amount is None
            else portal.money(split.amount, journal.currency))
        return refuse(gettext(REFUSALS[split.error], limit=limit,
                amount=amount))
    Invoice = pool.get('account.invoice')
    Payment = pool.get('account.payment')
    try:
        payment = Payment.portal_pay(journal, portal.user,
            [(Invoice(a.invoice_id), a.amount) for a in split.allocations],
            split.amount)
    except stripe.StripeError as exception:
        Transaction().rollback()
        return refuse(gettext('dunning_portal.msg_card_stripe_unavailable',
                error=exception.user_message or str(exception)))
    return portal.redirect(f'pay/{payment.id}/card')


def customer_payment(pool, portal, payment_id):
    "The customer's card payment made in the portal, else the same 404"
    Payment = pool.get('account.payment')
    payments = Payment.search([
            ('id', '=', payment_id),
            ('party', '=', portal.party.id),
            ('company', '=', portal.company.id),
            ('portal_allocations.id', '!=', None),
            ], limit=1)
    if not payments:
        portal.not_found()
    return payments[0]


@route('/pay/<int:payment_id>/card')
def card(request, pool, portal, payment_id):
    "Stripe's card form on the payment's PaymentIntent"
    payment = customer_payment(pool, portal, payment_id)
    if payment.state != 'processing':
        return portal.redirect(f'pay/{payment.id}/done')
    intent = payment.stripe_intent
    if intent and intent.status in {'succeeded', 'processing'}:
        return portal.redirect(f'pay/{payment.id}/done')
    return portal.render('pay_card.html', payment=payment, intent=intent,
        publishable_key=payment.journal.stripe_account.publishable_key,
        return_url=portal.external_url(f'pay/{payment.id}/done'),
        stripe_js=stripe_js())


@route('/pay/<int:payment_id>/done')
def done(request, pool, portal, payment_id):
    """Where Stripe sends the customer back: the payment recorded, with its
    receipts, or waiting for Stripe's word, or failed"""
    Allocation = pool.get('account.payment.allocation')
    payment = customer_payment(pool, portal, payment_id)
    receipts = []
    if payment.state == 'succeeded' and payment.clearing_move:
        receipts = [l for l in payment.clearing_move.lines
            if isinstance(l.origin, Allocation)]
    return portal.render('pay_done.html', payment=payment,
        receipts=receipts,
        accepted=request.args.get('redirect_status') == 'succeeded',
        survey=survey_url(payment) if receipts else None)
