"""Card payments from the portal through the real Stripe SDK and a local
Stripe, reconciled in the ledger by the signed events it sends back.

The portal runs in trytond's WSGI application on a real HTTP server, so that
the local Stripe can post its events to account_payment_stripe's webhook: on
SQLite the database must be a file, e.g. ``TRYTOND_DATABASE__PATH=/tmp/db
DB_NAME=test_stripe`` (an in-memory one belongs to the test's thread).
"""
import datetime as dt
import json
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
import requests
import stripe
from proteus import Model

from conftest import YEAR, body_of, make_customer, make_invoice, run_dunning
from portal_support import (  # noqa: F401
    PASSWORD, make_portal_user, portal_server, tryton_portal)
from stripe_server import StripeServer, sign

SECRET_KEY = 'sk_test_' + '4' * 24
PUBLISHABLE_KEY = 'pk_test_' + '5' * 24
SIGNING_SECRET = 'whsec_' + '6' * 32
INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)
VISA, DECLINED, DISPUTED = (
    '4242424242424242', '4000000000000002', '4000000000000259')


@pytest.fixture
def local_stripe():
    "The local Stripe, and the SDK pointed at it"
    server = StripeServer(SECRET_KEY, PUBLISHABLE_KEY, SIGNING_SECRET).start()
    api_base = stripe.api_base
    stripe.api_base = server.url
    try:
        yield server
    finally:
        stripe.api_base = api_base
        server.stop()


def test_local_stripe_speaks_like_stripe(local_stripe):
    "The SDK's objects, errors and webhook signatures work against it"
    intent = stripe.PaymentIntent.create(api_key=SECRET_KEY, amount=12345,
        currency='EUR', automatic_payment_methods={'enabled': True},
        idempotency_key='payment_intent-1')
    assert intent.id.startswith('pi_') and intent.amount == 12345
    assert intent.status == 'requires_payment_method'
    again = stripe.PaymentIntent.create(api_key=SECRET_KEY, amount=12345,
        currency='EUR', idempotency_key='payment_intent-1')
    assert again.id == intent.id, "an idempotency key answers the same"

    with pytest.raises(stripe.CardError) as declined:
        stripe.PaymentIntent.confirm(intent.id, api_key=SECRET_KEY,
            payment_method='pm_card_chargeDeclined')
    assert declined.value.code == 'card_declined'
    assert declined.value.user_message == "Your card was declined."

    intent = stripe.PaymentIntent.confirm(intent.id, api_key=SECRET_KEY,
        payment_method='pm_card_visa')
    assert intent.status == 'succeeded' and intent.amount_received == 12345
    intent = stripe.PaymentIntent.retrieve(intent.id, api_key=SECRET_KEY,
        expand=['latest_charge'])
    charge = intent.latest_charge
    assert charge.id.startswith('ch_') and charge.amount_captured == 12345
    assert charge.payment_intent == intent.id

    refund = stripe.Refund.create(api_key=SECRET_KEY, payment_intent=intent.id,
        amount=2345)
    assert refund.status == 'succeeded'
    assert stripe.Charge.retrieve(charge.id, api_key=SECRET_KEY
        ).amount_refunded == 2345

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe.PaymentIntent.retrieve('pi_unknown', api_key=SECRET_KEY)
    assert unknown.value.code == 'resource_missing'
    with pytest.raises(stripe.AuthenticationError):
        stripe.PaymentIntent.retrieve(intent.id, api_key='sk_test_wrong')
    with pytest.raises(stripe.AuthenticationError):
        stripe.Refund.create(api_key=PUBLISHABLE_KEY, payment_intent=intent.id)

    events = stripe.Event.list(api_key=SECRET_KEY, limit=100)
    assert [e.type for e in events][:3] == [
        'charge.refunded', 'charge.succeeded', 'payment_intent.succeeded']
    event = local_stripe.events[-1]
    payload = json.dumps(event)
    verified = stripe.Webhook.construct_event(
        payload, sign(payload, SIGNING_SECRET), SIGNING_SECRET)
    assert verified.id == event['id']
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            payload, sign(payload, 'whsec_forged'), SIGNING_SECRET)


def stripe_journal(world):
    """The company's Stripe account, its webhook signed, and a payment
    journal that books card payments through a clearing account"""
    accounts = world['accounts']
    Account = Model.get('account.account')
    clearing = Account(name="Stripe balance", parent=accounts['cash'].parent,
        type=accounts['cash'].type, reconcile=True, deferral=True)
    clearing.save()
    StripeAccount = Model.get('account.payment.stripe.account')
    account = StripeAccount(name="Stripe", secret_key=SECRET_KEY,
        publishable_key=PUBLISHABLE_KEY)
    account.save()
    account.click('new_identifier')
    account.webhook_signing_secret = SIGNING_SECRET
    account.save()
    Journal = Model.get('account.journal')
    PaymentJournal = Model.get('account.payment.journal')
    journal = PaymentJournal(name="Card (Stripe)", process_method='stripe',
        stripe_account=account, clearing_account=clearing,
        clearing_journal=Journal.find([('code', '=', 'CASH')])[0])
    journal.save()
    return account, journal, clearing


def succeeded_event(card, payment, event_id, amount):
    "Stripe's event saying the payment's PaymentIntent received amount"
    intent = dict(card.stripe.payment_intents[
            payment.stripe_payment_intent_id], status='succeeded',
        amount_received=amount)
    return {'id': event_id, 'object': 'event', 'type':
        'payment_intent.succeeded', 'data': {'object': intent},
        'created': 1, 'livemode': False, 'api_version': '2026-03-25.dahlia'}


@pytest.fixture
def card(tryton_portal, portal_server, local_stripe):
    "Card payments set up in the portal, minimum part payment 50.00"
    account, journal, clearing = stripe_journal(tryton_portal)
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.portal_payment_journal = journal
    configuration.portal_payment_minimum = Decimal('50.00')
    configuration.save()
    root = portal_server.rsplit('/portal/', 1)[0]
    local_stripe.webhook_url = (
        f'{root}/account_payment_stripe/webhook/{account.webhook_identifier}')
    return SimpleNamespace(world=tryton_portal, portal=portal_server,
        stripe=local_stripe, journal=journal, clearing=clearing)


class Customer:
    "A customer's browser without JavaScript: requests with cookies"

    def __init__(self, portal, email):
        self.portal = portal
        self.http = requests.Session()
        self.get('login')
        response = self.post('login', {'email': email, 'password': PASSWORD})
        assert response.url == portal, "logged in, on the balance page"

    def get(self, path, **kwargs):
        return self.http.get(self.portal + path, **kwargs)

    def post(self, path, data, **kwargs):
        data = list(data.items()) if isinstance(data, dict) else list(data)
        data.append(('csrf_token', self.http.cookies['dunning_portal_csrf']))
        return self.http.post(self.portal + path, data=data, **kwargs)

    def pay(self, invoices, amount=''):
        "Post the payment form; the card page it leads to"
        return self.post('pay', [('invoice', i.id) for i in invoices]
            + [('amount', amount)])

    def give_card(self, card_page, number):
        """What Stripe.js does with the card typed on the page: confirm the
        page's PaymentIntent with its client secret; Stripe's answer"""
        secret = re.search(r'data-secret="([^"]+)"', card_page.text)[1]
        intent = secret.split('_secret_')[0]
        key = re.search(r'data-key="([^"]+)"', card_page.text)[1]
        return requests.post(
            f'{stripe.api_base}/v1/payment_intents/{intent}/confirm', data={
                'key': key, 'client_secret': secret,
                'payment_method_data[type]': 'card',
                'payment_method_data[card][number]': number,
                }).json()


def customer(card, name, email):
    party = make_customer(name, email)
    make_portal_user(party, email)
    return party


def clearing_moves(payment):
    Move = Model.get('account.move')
    return Move.find([('origin', '=', f'account.payment,{payment.id}')])


def handled(server):
    "The answers of the webhook to what Stripe sent, by event type"
    deliveries = server.wait_sent()
    return [(d['event']['type'], d['status']) for d in deliveries]


def test_pay_two_invoices_reconciled_once(card):
    world = card.world
    party = customer(card, "Garage Martin", 'compta@garage-martin.example')
    first = make_invoice(world, party, '300.00', INVOICE_DATE)
    second = make_invoice(world, party, '200.00', INVOICE_DATE)
    third = make_invoice(world, party, '80.00', INVOICE_DATE)
    browser = Customer(card.portal, 'compta@garage-martin.example')

    form = browser.get(f'pay?invoice={first.id}&invoice={second.id}')
    assert 'Pay the whole balance, $580.00' in form.text
    assert len(re.findall(r'name="invoice" value="\d+" checked', form.text)
        ) == 2, "the invoices of the link are ticked"
    card_page = browser.pay([first, second])
    assert card_page.url.endswith('/card')
    assert 'You pay <strong data-amount>$500.00</strong>' in card_page.text

    Payment = Model.get('account.payment')
    payment, = Payment.find([])
    assert payment.state == 'processing'
    assert (payment.amount, payment.party, payment.kind) == (
        Decimal('500.00'), party, 'receivable')
    assert {(a.invoice.id, a.amount) for a in payment.portal_allocations} == {
        (first.id, Decimal('300.00')), (second.id, Decimal('200.00'))}
    intent = card.stripe.payment_intents[payment.stripe_payment_intent_id]
    assert (intent['amount'], intent['currency']) == (50000, 'usd')

    again = browser.pay([first, second])
    assert again.url == card_page.url, "a second click pays the same payment"
    assert len(Payment.find([])) == 1

    result = browser.give_card(card_page, VISA)
    assert result['status'] == 'succeeded'
    assert handled(card.stripe) == [('payment_intent.created', 204),
        ('payment_intent.succeeded', 204), ('charge.succeeded', 204)]

    done = browser.get(f'pay/{payment.id}/done?redirect_status=succeeded')
    assert 'Thank you, your payment is recorded' in done.text
    receipts = re.findall(r'payments/(\d+)/receipt\.pdf', done.text)
    assert len(receipts) == 2
    for line_id in receipts:
        pdf = browser.get(f'payments/{line_id}/receipt.pdf')
        assert pdf.content[:5] == b'%PDF-'
    survey, = re.findall(r'href="[^"]*/portal/(survey/[^"]+)"', done.text)
    assert 'How easy was it to pay?' in browser.get(survey).text

    payment.reload()
    assert payment.state == 'succeeded'
    for invoice in [first, second]:
        invoice.reload()
        assert invoice.state == 'paid'
        assert all(l.reconciliation for l in invoice.lines_to_pay)
    third.reload()
    assert third.state == 'posted' and third.amount_to_pay == Decimal('80.00')
    move, = clearing_moves(payment)
    assert move.state == 'posted'
    assert sorted((l.account.id, l.debit - l.credit, bool(l.reconciliation))
        for l in move.lines) == sorted([
            (card.clearing.id, Decimal('500.00'), False),
            (world['accounts']['receivable'].id, Decimal('-300.00'), True),
            (world['accounts']['receivable'].id, Decimal('-200.00'), True)])

    # Stripe retries an event whose answer it did not get.
    assert card.stripe.redeliver('payment_intent.succeeded') == 204
    assert card.stripe.redeliver('charge.succeeded') == 204
    assert clearing_moves(payment) == [move], "reconciled once"
    payment.reload()
    assert payment.state == 'succeeded'
    first.reload()
    assert first.state == 'paid'


def test_forged_and_malformed_events_change_nothing(card):
    world = card.world
    party = customer(card, "Garage Roux", 'roux@garage.example')
    invoice = make_invoice(world, party, '120.00', INVOICE_DATE)
    browser = Customer(card.portal, 'roux@garage.example')
    browser.pay([invoice])
    Payment = Model.get('account.payment')
    payment, = Payment.find([])
    card.stripe.wait_sent()
    event = succeeded_event(card, payment, 'evt_forged', 12000)
    payload = json.dumps(event)

    forged = card.stripe.deliver(
        event, signature=sign(payload, 'whsec_forged'), body=payload)
    unsigned = card.stripe.deliver(event, signature='', body=payload)
    stale = card.stripe.deliver(event, signature=sign(
            payload, SIGNING_SECRET, timestamp=1000), body=payload)
    assert (forged, unsigned, stale) == (400, 400, 400)
    for body in ['not json', '{"id": "evt_cut", "type": "payment_']:
        assert card.stripe.deliver(None, body=body) == 400
        answer = card.stripe.deliver(None, body=body, signature='')
        assert answer == 400
        text = card.stripe.deliveries[-1]['body']
        assert text.startswith("The body of a Stripe event must be JSON")
    payment.reload()
    invoice.reload()
    assert payment.state == 'processing'
    assert invoice.state == 'posted' and invoice.amount_to_pay == Decimal(
        '120.00')
    assert clearing_moves(payment) == []

    assert card.stripe.deliver(event, body=payload) == 204, (
        "the same event signed with the secret")
    payment.reload()
    invoice.reload()
    assert payment.state == 'succeeded' and invoice.state == 'paid'


def test_partial_payment_leaves_the_rest_to_the_next_reminder(card, mailbox):
    world = card.world
    party = customer(card, "Garage Petit", 'compta@garage-petit.example')
    invoice = make_invoice(world, party, '1000.00', INVOICE_DATE)
    other = make_invoice(world, party, '250.00', dt.date(YEAR, 3, 20))
    browser = Customer(card.portal, 'compta@garage-petit.example')
    card_page = browser.pay([other, invoice], amount='1,100.00')
    assert browser.give_card(card_page, VISA)['status'] == 'succeeded'
    card.stripe.wait_sent()

    invoice.reload()
    other.reload()
    assert invoice.state == 'paid', "the oldest due is paid first"
    assert other.state == 'posted'
    assert other.amount_to_pay == Decimal('150.00')
    assert not any(l.reconciliation for l in other.lines_to_pay)
    line, = other.payment_lines
    assert line.credit == Decimal('100.00') and line.move.state == 'posted'
    form = browser.get('pay')
    assert '$150.00' in form.text and '$250.00' not in form.text

    run_dunning(dt.date(YEAR, 4, 22))
    email, = mailbox.messages
    assert 'compta@garage-petit.example' in email['To']
    assert '$150.00' in body_of(email)
    assert '$250.00' not in body_of(email)
    assert '$1,000.00' not in body_of(email)


def test_refused_amounts_create_nothing(card, tryton_portal):
    world = card.world
    party = customer(card, "Garage Blanc", 'blanc@garage.example')
    first = make_invoice(world, party, '300.00', INVOICE_DATE)
    second = make_invoice(world, party, '200.00', INVOICE_DATE)
    small = make_invoice(world, party, '20.00', INVOICE_DATE)
    stranger = make_customer("Garage Noir", 'noir@garage.example')
    theirs = make_invoice(world, stranger, '999.00', INVOICE_DATE)
    browser = Customer(card.portal, 'blanc@garage.example')

    refusals = {
        '600': "$600.00 is more than the $500.00 the ticked invoices owe",
        '30': "$30.00 is less than $50.00, the smallest part payment",
        'twelve': '"twelve" is not an amount',
        '12.345': "12.345 has more decimals than the currency",
        '0': "must be more than zero",
        'NaN': 'Amount to pay now: "NaN" is not an amount',
        '1,10,0': '"1,10,0" is not an amount',
        }
    # Python's Decimal reads these; the form names the field and refuses.
    for text in ['inf', '-Infinity', 'nan', 'sNaN', '1e999', '1E3']:
        refusals[text] = f'Amount to pay now: "{text}" is not an amount'
    for amount, message in refusals.items():
        page = browser.pay([first, second], amount=amount)
        assert page.status_code == 400, amount
        assert message in page.text.replace('&#34;', '"'), amount
        assert not re.search(r'(?i)\$\s*-?(inf|nan)|(inf|nan)\s*\$',
            page.text), "no amount shown as infinite"
    page = browser.pay([], amount='100')
    assert page.status_code == 400
    assert "Tick at least one invoice to pay." in page.text
    for path in [f'pay?invoice={theirs.id}', 'pay?invoice=999999']:
        assert browser.get(path).status_code == 404
    for ids in [[theirs.id], [first.id, theirs.id], [999999], ['x']]:
        page = browser.post('pay', [('invoice', i) for i in ids])
        assert page.status_code == 404
        assert "This page does not exist." in page.text
        assert 'Noir' not in page.text and '999.00' not in page.text
    no_csrf = browser.http.post(card.portal + 'pay',
        data={'invoice': first.id})
    assert no_csrf.status_code == 400

    Payment = Model.get('account.payment')
    assert Payment.find([]) == [] and card.stripe.payment_intents == {}

    small_page = browser.pay([small])
    assert small_page.url.endswith('/card'), (
        "below the minimum, paid in full")


def test_card_page_says_when_card_payment_is_off(tryton_portal,
        portal_server):
    party = make_customer("Garage Vert", 'vert@garage.example')
    make_portal_user(party, 'vert@garage.example')
    make_invoice(tryton_portal, party, '100.00', INVOICE_DATE)
    browser = Customer(portal_server, 'vert@garage.example')
    page = browser.get('pay')
    assert page.status_code == 200
    assert 'Card payment is not available here.' in page.text
    assert 'Claire, accounts, +33 1 23 45 67 89' in page.text

    account, journal, clearing = stripe_journal(tryton_portal)
    journal.clearing_account = None
    journal.clearing_journal = None
    journal.save()
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.portal_payment_journal = journal
    with pytest.raises(Exception) as refused:
        configuration.save()
    assert 'needs a clearing account' in str(refused.value)


def test_declined_card_leaves_the_invoice_open(card, mailbox):
    world = card.world
    party = customer(card, "Garage Lefebvre", 'lefebvre@garage.example')
    invoice = make_invoice(world, party, '450.00', INVOICE_DATE)
    browser = Customer(card.portal, 'lefebvre@garage.example')
    card_page = browser.pay([invoice])

    result = browser.give_card(card_page, DECLINED)
    assert result['error']['code'] == 'card_declined'
    assert result['error']['message'] == "Your card was declined."
    assert ('payment_intent.payment_failed', 204) in handled(card.stripe)
    Payment = Model.get('account.payment')
    payment, = Payment.find([])
    invoice.reload()
    assert payment.state == 'processing', "the card can be given again"
    assert payment.stripe_error_code == 'card_declined'
    assert invoice.state == 'posted'
    assert invoice.amount_to_pay == Decimal('450.00')
    assert clearing_moves(payment) == []
    retry, = mailbox.messages
    assert retry['To'] == 'lefebvre@garage.example'

    card_page = browser.get(f'pay/{payment.id}/card')
    assert browser.give_card(card_page, VISA)['status'] == 'succeeded'
    card.stripe.wait_sent()
    invoice.reload()
    assert invoice.state == 'paid'


def test_dispute_lost_reopens_the_invoice(card):
    world = card.world
    party = customer(card, "Garage Morel", 'morel@garage.example')
    invoice = make_invoice(world, party, '400.00', INVOICE_DATE)
    browser = Customer(card.portal, 'morel@garage.example')
    card_page = browser.pay([invoice])
    assert browser.give_card(card_page, DISPUTED)['status'] == 'succeeded'
    assert ('charge.dispute.created', 204) in handled(card.stripe)
    Payment = Model.get('account.payment')
    payment, = Payment.find([])
    invoice.reload()
    assert payment.state == 'succeeded'
    assert payment.stripe_dispute_status == 'needs_response'
    assert invoice.state == 'paid', "paid until the bank decides"

    charge, = card.stripe.charges
    card.stripe.close_dispute(charge, 'lost')
    assert handled(card.stripe)[-1] == ('charge.dispute.closed', 204)
    payment.reload()
    invoice.reload()
    assert payment.state == 'failed'
    assert invoice.state == 'posted'
    assert invoice.amount_to_pay == Decimal('400.00')
    assert not any(l.reconciliation for l in invoice.lines_to_pay)
    move, cancel = sorted(
        clearing_moves(payment) + Model.get('account.move').find([
                ('origin', 'like', 'account.move,%')]), key=lambda m: m.id)
    assert sum(l.debit - l.credit for l in move.lines + cancel.lines
        if l.account == card.clearing) == 0


def test_refund_lowers_the_payment_oldest_invoice_first(card):
    world = card.world
    party = customer(card, "Garage Simon", 'simon@garage.example')
    first = make_invoice(world, party, '300.00', INVOICE_DATE)
    second = make_invoice(world, party, '200.00', dt.date(YEAR, 3, 9))
    browser = Customer(card.portal, 'simon@garage.example')
    card_page = browser.pay([first, second])
    assert browser.give_card(card_page, VISA)['status'] == 'succeeded'
    card.stripe.wait_sent()
    Payment = Model.get('account.payment')
    payment, = Payment.find([])

    Refund = Model.get('account.payment.stripe.refund')
    refund = Refund(payment=payment, amount=Decimal('100.00'),
        reason='requested_by_customer')
    refund.click('submit')
    refund.click('approve')
    Cron = Model.get('ir.cron')
    create_refunds, = Cron.find([
            ('method', '=', 'account.payment.stripe.refund|stripe_create')])
    create_refunds.click('run_once')
    assert handled(card.stripe)[-1] == ('charge.refunded', 204)

    payment.reload()
    first.reload()
    second.reload()
    assert payment.state == 'succeeded'
    assert payment.amount == Decimal('400.00')
    assert first.state == 'paid', "the oldest invoice stays paid"
    assert second.state == 'posted'
    assert second.amount_to_pay == Decimal('100.00')
    line, = second.payment_lines
    assert line.credit == Decimal('100.00') and not line.reconciliation
    moves = clearing_moves(payment)
    assert len(moves) == 2, "the first booking and the one of 400.00"
    assert all(m.state == 'posted' for m in moves)
    assert card.stripe.redeliver('charge.refunded') == 204
    assert len(clearing_moves(payment)) == 2, "refunded once"
