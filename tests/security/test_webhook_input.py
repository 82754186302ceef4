"""The providers' webhooks: bad input gets a 4xx that says what is wrong and
writes nothing; a delivery the provider repeats (same Stripe event id, same
Twilio message SID and status) has no second effect and no second audit
entry."""
import json

from proteus import Model

from conftest import make_invoice, run_dunning
from stripe_server import sign
from test_sms import (  # noqa: F401
    INVOICE_DATE, client, customer, day, twilio)
from test_stripe import (  # noqa: F401
    SIGNING_SECRET, Customer, card, clearing_moves, customer as card_customer,
    local_stripe, succeeded_event)
from portal_support import portal_server, tryton_portal  # noqa: F401


def counts(config, *models):
    "How many rows the tables of models have, whatever rules hide"
    from sql.aggregate import Count
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(config.database_name)
    result = {}
    with Transaction().start(config.database_name, 0) as transaction:
        cursor = transaction.connection.cursor()
        for name in models:
            table = pool.get(name).__table__()
            cursor.execute(*table.select(Count(table.id)))
            result[name], = cursor.fetchone()
    return result


# Twilio

def sent_sms(tryton_sms, twilio):  # noqa: F811
    "The SMS of a reminder Twilio took, and its message in the outbox"
    party = customer("Garage Martin", '06 12 34 56 78')
    make_invoice(tryton_sms, party, '1234.56', INVOICE_DATE)
    run_dunning(day(-7))
    sms, = twilio.messages
    Message = Model.get('account.dunning.message')
    message, = Message.find([('party', '=', party.id)])
    assert message.sms_status == 'queued'
    return sms, message


def not_delivered(config, message):
    """The (id, company) of the message's audit entries "not delivered",
    whichever company they were written for"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(config.database_name, 0) as transaction:
        audit = Pool(config.database_name).get(
            'account.dunning.audit').__table__()
        cursor = transaction.connection.cursor()
        cursor.execute(*audit.select(audit.id, audit.company,
                where=(audit.message == message.id)
                & (audit.kind == 'sms_not_delivered')))
        return cursor.fetchall()


def test_twilio_status_bad_error_code(tryton_sms, twilio, client):  # noqa
    sms, message = sent_sms(tryton_sms, twilio)
    for code in ['abc', '30003; DROP TABLE', '1' * 30, '-1', '3.5']:
        url, params = twilio.status_callback(sms, 'undelivered', code)
        answer = twilio.post(client, url, params)
        assert answer.status_code == 400, code
        text = answer.get_data(as_text=True)
        assert "ErrorCode must be a Twilio error number" in text, text
        assert len(text) < 200, "a short message"
    url, params = twilio.status_callback(sms, 'undelivered')
    del params['MessageStatus']
    answer = twilio.post(client, url, params)
    assert answer.status_code == 400
    assert "MessageStatus is missing" in answer.get_data(as_text=True)
    message.reload()
    assert (message.sms_status, message.sms_error_code) == ('queued', None)
    assert not_delivered(tryton_sms['config'], message) == [], (
        "no audit entry")


def test_twilio_status_replayed(tryton_sms, twilio, client):  # noqa: F811
    sms, message = sent_sms(tryton_sms, twilio)
    url, params = twilio.status_callback(sms, 'undelivered', 30003)
    assert twilio.post(client, url, params).status_code == 204
    message.reload()
    assert (message.sms_status, message.sms_error_code) == (
        'undelivered', 30003)
    config = tryton_sms['config']
    entry, = not_delivered(config, message)
    written_at = message.write_date

    # Twilio missed the answer and posts the same report again.
    assert twilio.post(client, url, params).status_code == 204
    message.reload()
    assert not_delivered(config, message) == [entry], "no second audit entry"
    assert message.write_date == written_at, "no second write"
    _, company = entry
    assert company == message.company.id, "the accountant sees the entry"


# Stripe

def paying(card):  # noqa: F811
    "A customer at Stripe's card form: a payment waiting for the card"
    party = card_customer(card, "Garage Roux", 'roux@garage.example')
    invoice = make_invoice(card.world, party, '120.00', INVOICE_DATE)
    Customer(card.portal, 'roux@garage.example').pay([invoice])
    card.stripe.wait_sent()
    Payment = Model.get('account.payment')
    payment, = Payment.find([])
    return payment, invoice


STRIPE_MODELS = ['account.payment.stripe.event', 'account.dunning.audit',
    'account.move']


def test_stripe_bad_bodies(card):  # noqa: F811
    payment, invoice = paying(card)
    before = counts(card.world['config'], *STRIPE_MODELS)
    bodies = {
        '[' * 100000: "nests more than 32 levels deep",
        '{"a": ' * 50000 + '1' + '}' * 50000: "nests more than 32 levels",
        '[' * 500 + ']' * 500: "nests more than 32 levels deep",
        '[]': "an object with an id and a type",
        '"evt_1"': "an object with an id and a type",
        '{"id": 1, "type": "charge.succeeded"}': "with an id and a type",
        }
    for body, problem in bodies.items():
        for signature in [None, '']:
            answer = card.stripe.deliver(None, body=body, signature=signature)
            text = card.stripe.deliveries[-1]['body']
            assert answer == 400, (body[:20], text)
            assert text.startswith("The body of a Stripe event must be JSON")
            assert problem in text, text
            assert len(text) < 200, "a short message"

    event = {'id': 'evt_1', 'object': 'event', 'type': 'charge.succeeded',
        'data': {'object': {}}}
    payload = json.dumps(event)
    for header, problem in [
            ('', "The Stripe-Signature header is missing"),
            (sign(payload, 'whsec_forged'), "does not sign this body"),
            (sign(payload, SIGNING_SECRET, timestamp=1000),
                "does not sign this body")]:
        assert card.stripe.deliver(
            event, signature=header, body=payload) == 400
        assert problem in card.stripe.deliveries[-1]['body']

    url = card.stripe.webhook_url
    card.stripe.webhook_url = url.rsplit('/', 1)[0] + '/unknown'
    try:
        assert card.stripe.deliver(event, body=payload) == 404
        assert "No Stripe account receives its events at this address" in (
            card.stripe.deliveries[-1]['body'])
    finally:
        card.stripe.webhook_url = url

    assert counts(card.world['config'], *STRIPE_MODELS) == before, (
        "nothing written")
    payment.reload()
    invoice.reload()
    assert payment.state == 'processing' and invoice.state == 'posted'


def test_stripe_event_delivered_twice(card):  # noqa: F811
    payment, invoice = paying(card)
    event = succeeded_event(card, payment, 'evt_twice', 12000)
    assert card.stripe.deliver(event) == 204
    payment.reload()
    assert payment.state == 'succeeded'
    move, = clearing_moves(payment)
    config = card.world['config']
    after_first = counts(config, *STRIPE_MODELS, 'account.move.line')
    written_at = payment.write_date

    assert card.stripe.deliver(event) == 204, "Stripe's retry is answered"
    assert counts(
            config, *STRIPE_MODELS, 'account.move.line') == after_first, (
        "no second effect, no second audit entry")
    payment.reload()
    assert payment.write_date == written_at
    assert clearing_moves(payment) == [move]
    invoice.reload()
    assert invoice.state == 'paid'
