"""Card payments from the portal through the real Stripe SDK and a local
Stripe, reconciled in the ledger by the signed events it sends back."""
import json

import pytest
import stripe

from stripe_server import StripeServer, sign

SECRET_KEY = 'sk_test_' + '4' * 24
PUBLISHABLE_KEY = 'pk_test_' + '5' * 24
SIGNING_SECRET = 'whsec_' + '6' * 32


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
