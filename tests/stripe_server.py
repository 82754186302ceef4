"""A local stand-in for Stripe's API, Stripe.js and webhooks, for the real SDK.

It answers the endpoints account_payment_stripe and the portal call, in the
shapes of Stripe's API reference (https://docs.stripe.com/api): customers,
payment intents (create, retrieve, confirm, capture, cancel), charges,
refunds and the events list; errors come as Stripe sends them, an HTTP status
with ``{"error": {"type", "code", "message", ...}}``. Secret keys
authenticate with ``Authorization: Bearer sk_...``; what Stripe.js may do
with the publishable key (retrieve and confirm a payment intent whose client
secret it holds) is allowed with ``key=pk_...``, and answered with CORS
headers as Stripe's API is.

Confirming with one of Stripe's test cards (https://docs.stripe.com/testing)
decides the outcome: 4242 4242 4242 4242 (``pm_card_visa``) succeeds,
4000 0000 0000 0002 (``pm_card_chargeDeclined``) and 4000 0000 0000 9995
(``pm_card_chargeDeclinedInsufficientFunds``) are declined, 4000 0000 0000
0259 (``pm_card_createDispute``) succeeds and is then disputed.

Each change sends its events, signed like Stripe signs them (header
``Stripe-Signature: t=<time>,v1=<HMAC-SHA256 of "<time>.<body>">``), to the
webhook endpoint, one after the other in a thread of their own, and keeps
them for ``GET /v1/events``. ``stripe_js`` is a small Stripe.js with the
calls the portal's card page makes, talking to this server.
"""
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API_VERSION = '2026-03-25.dahlia'
FAKE_STRIPE_JS = Path(__file__).parent / 'fake_stripe.js'

# Test payment methods and card numbers: what confirming with them does.
SUCCEED, DECLINE, DISPUTE = 'succeed', 'decline', 'dispute'
CARDS = {
    'pm_card_visa': (SUCCEED, 'visa', '4242', None),
    'pm_card_chargeDeclined': (DECLINE, 'visa', '0002', 'generic_decline'),
    'pm_card_chargeDeclinedInsufficientFunds': (
        DECLINE, 'visa', '9995', 'insufficient_funds'),
    'pm_card_createDispute': (DISPUTE, 'visa', '0259', None),
    }
NUMBERS = {
    '4242424242424242': 'pm_card_visa',
    '4000000000000002': 'pm_card_chargeDeclined',
    '4000000000009995': 'pm_card_chargeDeclinedInsufficientFunds',
    '4000000000000259': 'pm_card_createDispute',
    }
DECLINE_MESSAGES = {
    'generic_decline': "Your card was declined.",
    'insufficient_funds': "Your card has insufficient funds.",
    }


def new_id(prefix):
    return f'{prefix}_{secrets.token_hex(12)}'


def sign(payload, secret, timestamp=None):
    "The Stripe-Signature header of payload (str) for secret"
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f'{timestamp}.{payload}'.encode(),
        hashlib.sha256).hexdigest()
    return f't={timestamp},v1={signature}'


def parse_form(text):
    """Stripe's form encoding, a[b][c]=v and a[0]=v, as nested dicts
    (lists stay dicts keyed by index: nothing here needs their order)"""
    values = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        parts = key.replace(']', '').split('[')
        target = values
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return values


class StripeError(Exception):
    def __init__(self, status, type_, message, code=None, **extra):
        super().__init__(message)
        self.status = status
        self.body = {'error': {
                'type': type_, 'message': message,
                **({'code': code} if code else {}), **extra}}


def missing(kind, id_):
    return StripeError(HTTPStatus.NOT_FOUND, 'invalid_request_error',
        f"No such {kind}: '{id_}'", code='resource_missing', param='id')


class StripeServer:
    "Start with start(), stop with stop(); url is the API's base URL"

    def __init__(self, secret_key, publishable_key, signing_secret=None,
            webhook_url=None):
        self.secret_key = secret_key
        self.publishable_key = publishable_key
        self.signing_secret = signing_secret
        self.webhook_url = webhook_url
        self.customers = {}
        self.payment_intents = {}
        self.charges = {}
        self.refunds = {}
        self.events = []
        self.deliveries = []
        self.requests = []
        self.idempotent = {}
        self.lock = threading.RLock()
        self.delivered = threading.Condition(self.lock)
        self.outbox = []
        self.sending = False
        # 0: any free port; the demo sets one of its own
        self.port = 0

    def start(self):
        self.httpd = ThreadingHTTPServer(
            ('127.0.0.1', self.port), self._handler())
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    @property
    def stripe_js(self):
        "Stripe.js for the browser, calling this server"
        return FAKE_STRIPE_JS.read_text().replace('@API_BASE@', self.url)

    # Webhooks

    def emit(self, type_, obj, request_id=None):
        "Record the event and queue it for the webhook endpoint"
        event = {
            'id': new_id('evt'), 'object': 'event',
            'api_version': API_VERSION, 'created': int(time.time()),
            'data': {'object': json.loads(json.dumps(obj))},
            'livemode': False, 'pending_webhooks': 1,
            'request': {'id': request_id, 'idempotency_key': None},
            'type': type_,
            }
        with self.lock:
            self.events.append(event)
            if self.webhook_url:
                self.outbox.append(event)
                if not self.sending:
                    self.sending = True
                    threading.Thread(target=self._send, daemon=True).start()
        return event

    def _send(self):
        while True:
            with self.lock:
                if not self.outbox:
                    self.sending = False
                    self.delivered.notify_all()
                    return
                event = self.outbox.pop(0)
            self.deliver(event)

    def deliver(self, event, signature=None, body=None):
        """Post event to the webhook endpoint, signed unless signature is
        given; return the HTTP status"""
        payload = body if body is not None else json.dumps(event, indent=2)
        if signature is None:
            signature = sign(payload, self.signing_secret)
        request = urllib.request.Request(self.webhook_url,
            data=payload.encode(), method='POST', headers={
                'Content-Type': 'application/json; charset=utf-8',
                'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
                **({'Stripe-Signature': signature} if signature else {}),
                })
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        with self.lock:
            self.deliveries.append({
                    'event': event, 'status': status, 'body': text})
            self.delivered.notify_all()
        return status

    def redeliver(self, type_):
        "Send again the last event of type_, as Stripe's retries do"
        event, = [e for e in self.events if e['type'] == type_][-1:]
        return self.deliver(event)

    def wait_sent(self, timeout=60):
        "Wait until every queued event got its answer; return deliveries"
        with self.lock:
            if not self.delivered.wait_for(
                    lambda: not self.outbox and not self.sending, timeout):
                raise TimeoutError("Events still waiting for the webhook")
            return list(self.deliveries)

    # Objects

    def _intent(self, values):
        amount = int(values['amount'])
        if amount < 50:
            raise StripeError(HTTPStatus.BAD_REQUEST, 'invalid_request_error',
                "Amount must be at least $0.50 usd", code='amount_too_small',
                param='amount')
        id_ = new_id('pi')
        intent = {
            'id': id_, 'object': 'payment_intent', 'amount': amount,
            'amount_capturable': 0, 'amount_received': 0,
            'automatic_payment_methods': (
                {'enabled': True, 'allow_redirects': 'always'}
                if values.get('automatic_payment_methods') else None),
            'canceled_at': None, 'cancellation_reason': None,
            'capture_method': values.get('capture_method', 'automatic'),
            'client_secret': f'{id_}_secret_{secrets.token_hex(12)}',
            'confirmation_method': 'automatic',
            'created': int(time.time()),
            'currency': values['currency'].lower(),
            'customer': values.get('customer') or None,
            'description': values.get('description') or None,
            'last_payment_error': None, 'latest_charge': None,
            'livemode': False, 'metadata': values.get('metadata', {}),
            'next_action': None, 'payment_method': None,
            'payment_method_types': ['card'], 'status': (
                'requires_payment_method'),
            }
        self.payment_intents[id_] = intent
        self.emit('payment_intent.created', intent)
        if values.get('confirm') == 'true':
            return self._confirm(intent, values)
        return intent

    def _confirm(self, intent, values):
        if intent['status'] not in {
                'requires_payment_method', 'requires_confirmation'}:
            raise StripeError(HTTPStatus.BAD_REQUEST, 'invalid_request_error',
                "This PaymentIntent's status is %s and cannot be confirmed."
                % intent['status'], code='payment_intent_unexpected_state',
                payment_intent=intent)
        method = values.get('payment_method')
        number = values.get('payment_method_data', {}).get(
            'card', {}).get('number', '').replace(' ', '')
        if number:
            method = NUMBERS.get(number)
            if not method:
                raise StripeError(HTTPStatus.PAYMENT_REQUIRED, 'card_error',
                    "Your card number is incorrect.",
                    code='incorrect_number', param='number')
        if method not in CARDS:
            raise StripeError(HTTPStatus.BAD_REQUEST, 'invalid_request_error',
                f"No such PaymentMethod: '{method}'",
                code='resource_missing', param='payment_method')
        outcome, brand, last4, decline = CARDS[method]
        intent['payment_method'] = method
        charge = self._charge(intent, brand, last4, decline)
        intent['latest_charge'] = charge['id']
        if outcome == DECLINE:
            error = {
                'type': 'card_error', 'code': 'card_declined',
                'decline_code': decline, 'charge': charge['id'],
                'message': DECLINE_MESSAGES[decline],
                'payment_method': {'id': method, 'object': 'payment_method'},
                }
            intent['status'] = 'requires_payment_method'
            intent['last_payment_error'] = error
            intent['payment_method'] = None
            self.emit('charge.failed', charge)
            self.emit('payment_intent.payment_failed', intent)
            raise StripeError(HTTPStatus.PAYMENT_REQUIRED, 'card_error',
                error['message'], code='card_declined',
                decline_code=decline, charge=charge['id'],
                payment_intent=intent)
        if intent['capture_method'] == 'manual':
            intent['status'] = 'requires_capture'
            intent['amount_capturable'] = intent['amount']
            self.emit('charge.succeeded', charge)
            self.emit('payment_intent.amount_capturable_updated', intent)
            return intent
        intent['status'] = 'succeeded'
        intent['amount_received'] = intent['amount']
        self.emit('payment_intent.succeeded', intent)
        self.emit('charge.succeeded', charge)
        if outcome == DISPUTE:
            self.dispute(charge['id'])
        return intent

    def _charge(self, intent, brand, last4, decline):
        failed = decline is not None
        captured = not failed and intent['capture_method'] == 'automatic'
        charge = {
            'id': new_id('ch'), 'object': 'charge',
            'amount': intent['amount'],
            'amount_captured': intent['amount'] if captured else 0,
            'amount_refunded': 0,
            'balance_transaction': None if failed else new_id('txn'),
            'captured': captured, 'created': int(time.time()),
            'currency': intent['currency'], 'customer': intent['customer'],
            'description': intent['description'], 'disputed': False,
            'failure_code': 'card_declined' if failed else None,
            'failure_message': DECLINE_MESSAGES[decline] if failed else None,
            'livemode': False, 'metadata': {},
            'outcome': {
                'network_status': ('declined_by_network' if failed
                    else 'approved_by_network'),
                'reason': decline, 'risk_level': 'normal',
                'seller_message': (
                    'The bank did not return any further details with this '
                    'decline.' if failed else 'Payment complete.'),
                'type': 'issuer_declined' if failed else 'authorized',
                },
            'paid': not failed, 'payment_intent': intent['id'],
            'payment_method': intent['payment_method'],
            'payment_method_details': {'type': 'card', 'card': {
                    'brand': brand, 'last4': last4, 'exp_month': 12,
                    'exp_year': 2034, 'country': 'FR',
                    'fingerprint': hashlib.sha256(
                        last4.encode()).hexdigest()[:16],
                    }},
            'refunded': False,
            'refunds': {'object': 'list', 'data': [], 'has_more': False,
                'total_count': 0, 'url': '/v1/refunds'},
            'status': 'failed' if failed else 'succeeded',
            }
        self.charges[charge['id']] = charge
        return charge

    def dispute(self, charge_id, reason='fraudulent'):
        "The cardholder disputes the charge: charge.dispute.created"
        charge = self.charges[charge_id]
        charge['disputed'] = True
        dispute = {
            'id': new_id('dp'), 'object': 'dispute',
            'amount': charge['amount_captured'], 'charge': charge_id,
            'created': int(time.time()), 'currency': charge['currency'],
            'is_charge_refundable': False, 'livemode': False,
            'metadata': {}, 'payment_intent': charge['payment_intent'],
            'reason': reason, 'status': 'needs_response',
            }
        charge['dispute'] = dispute
        self.emit('charge.dispute.created', dispute)
        return dispute

    def close_dispute(self, charge_id, status):
        "The bank decides: won or lost; charge.dispute.closed"
        with self.lock:
            dispute = self.charges[charge_id]['dispute']
            dispute['status'] = status
            self.emit('charge.dispute.closed', dispute)

    def _refund(self, values):
        if values.get('payment_intent'):
            intent = self.payment_intents.get(values['payment_intent'])
            if not intent:
                raise missing('payment_intent', values['payment_intent'])
            charge = self.charges.get(intent['latest_charge'])
        else:
            charge = self.charges.get(values.get('charge'))
            if not charge:
                raise missing('charge', values.get('charge'))
        if not charge or not charge['captured']:
            raise StripeError(HTTPStatus.BAD_REQUEST, 'invalid_request_error',
                "This charge has no captured amount to refund.",
                code='charge_not_refundable')
        left = charge['amount_captured'] - charge['amount_refunded']
        amount = int(values.get('amount') or left)
        if amount > left:
            raise StripeError(HTTPStatus.BAD_REQUEST, 'invalid_request_error',
                f"Refund amount ({amount}) is greater than unrefunded amount "
                f"on charge ({left})", code='amount_too_large',
                param='amount')
        refund = {
            'id': new_id('re'), 'object': 'refund', 'amount': amount,
            'balance_transaction': new_id('txn'), 'charge': charge['id'],
            'created': int(time.time()), 'currency': charge['currency'],
            'metadata': {}, 'payment_intent': charge['payment_intent'],
            'reason': values.get('reason') or None, 'status': 'succeeded',
            }
        self.refunds[refund['id']] = refund
        charge['amount_refunded'] += amount
        charge['refunded'] = charge['amount_refunded'] == charge['amount']
        charge['refunds']['data'].insert(0, refund)
        charge['refunds']['total_count'] += 1
        self.emit('charge.refunded', charge)
        return refund

    def _customer(self, values):
        customer = {
            'id': new_id('cus'), 'object': 'customer',
            'created': int(time.time()), 'email': values.get('email'),
            'livemode': False, 'metadata': {}, 'name': values.get('name'),
            'phone': values.get('phone'),
            'preferred_locales': list(
                values.get('preferred_locales', {}).values()),
            }
        self.customers[customer['id']] = customer
        return customer

    def _events(self, query):
        "Newest first, those after ending_before only, as Stripe lists them"
        events = self.events[::-1]
        if before := query.get('ending_before'):
            ids = [e['id'] for e in events]
            events = events[:ids.index(before)] if before in ids else []
        limit = int(query.get('limit', 10))
        return {'object': 'list', 'data': events[:limit],
            'has_more': len(events) > limit, 'url': '/v1/events'}

    # HTTP

    def answer(self, method, path, query, values, key):
        "The object or list that answers the request, or raise StripeError"
        parts = path.strip('/').split('/')[1:]
        public = key == self.publishable_key
        if public:
            # Stripe.js: retrieve and confirm of an intent it has the
            # client secret of, nothing else.
            intent = self.payment_intents.get(
                parts[1] if len(parts) > 1 else None)
            secret = values.get('client_secret') or query.get(
                'client_secret')
            if (parts[0] != 'payment_intents' or not intent
                    or secret != intent['client_secret']
                    or parts[2:] not in ([], ['confirm'])):
                raise StripeError(HTTPStatus.UNAUTHORIZED,
                    'invalid_request_error',
                    "This API call cannot be made with a publishable API "
                    "key. Please use a secret API key.",
                    code='secret_key_required')
        elif key != self.secret_key:
            raise StripeError(HTTPStatus.UNAUTHORIZED,
                'invalid_request_error',
                f"Invalid API Key provided: {(key or '')[:8]}****")
        match method, parts:
            case 'POST', ['customers']:
                return self._customer(values)
            case 'GET', ['customers', id_]:
                return self.customers.get(id_) or _raise(
                    missing('customer', id_))
            case 'POST', ['payment_intents']:
                return self._intent(values)
            case 'GET', ['payment_intents', id_]:
                intent = self.payment_intents.get(id_) or _raise(
                    missing('payment_intent', id_))
                if 'latest_charge' in query.get('expand', {}).values() and (
                        intent['latest_charge']):
                    return {**intent, 'latest_charge': self.charges[
                            intent['latest_charge']]}
                return intent
            case 'POST', ['payment_intents', id_, 'confirm']:
                intent = self.payment_intents.get(id_) or _raise(
                    missing('payment_intent', id_))
                return self._confirm(intent, values)
            case 'POST', ['payment_intents', id_, 'capture']:
                intent = self.payment_intents.get(id_) or _raise(
                    missing('payment_intent', id_))
                return self._capture(intent, values)
            case 'POST', ['payment_intents', id_, 'cancel']:
                intent = self.payment_intents.get(id_) or _raise(
                    missing('payment_intent', id_))
                intent['status'] = 'canceled'
                intent['canceled_at'] = int(time.time())
                intent['cancellation_reason'] = values.get(
                    'cancellation_reason')
                self.emit('payment_intent.canceled', intent)
                return intent
            case 'GET', ['charges', id_]:
                return self.charges.get(id_) or _raise(missing('charge', id_))
            case 'POST', ['refunds']:
                return self._refund(values)
            case 'GET', ['refunds', id_]:
                return self.refunds.get(id_) or _raise(missing('refund', id_))
            case 'GET', ['events']:
                return self._events(query)
        raise StripeError(HTTPStatus.NOT_FOUND, 'invalid_request_error',
            f"Unrecognized request URL ({method}: {path}).")

    def _capture(self, intent, values):
        if intent['status'] != 'requires_capture':
            raise StripeError(HTTPStatus.BAD_REQUEST, 'invalid_request_error',
                "This PaymentIntent could not be captured because it has a "
                f"status of {intent['status']}.",
                code='payment_intent_unexpected_state')
        amount = int(values.get('amount_to_capture') or intent['amount'])
        charge = self.charges[intent['latest_charge']]
        charge['captured'], charge['amount_captured'] = True, amount
        intent.update(status='succeeded', amount_received=amount,
            amount_capturable=0)
        self.emit('charge.captured', charge)
        self.emit('payment_intent.succeeded', intent)
        return intent

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_OPTIONS(self):
                self.send_response(HTTPStatus.NO_CONTENT)
                self._cors()
                self.end_headers()

            def do_GET(self):
                self._serve('GET')

            def do_POST(self):
                self._serve('POST')

            def _cors(self):
                self.send_header('Access-Control-Allow-Origin', '*')
                self.send_header('Access-Control-Allow-Headers',
                    'Authorization, Content-Type, Stripe-Version')

            def _serve(self, method):
                url = urllib.parse.urlsplit(self.path)
                if url.path == '/v3/':
                    return self._send(HTTPStatus.OK, server.stripe_js,
                        'application/javascript')
                length = int(self.headers.get('Content-Length') or 0)
                values = parse_form(self.rfile.read(length).decode())
                query = parse_form(url.query)
                auth = self.headers.get('Authorization', '')
                key = (auth.removeprefix('Bearer ') if auth
                    else values.get('key') or query.get('key'))
                idempotency = self.headers.get('Idempotency-Key')
                request_id = new_id('req')
                with server.lock:
                    server.requests.append((method, url.path, values))
                    replay = server.idempotent.get((key, idempotency))
                    if idempotency and replay:
                        status, body = replay
                    else:
                        try:
                            status, body = HTTPStatus.OK, server.answer(
                                method, url.path, query, values, key)
                        except StripeError as error:
                            status, body = error.status, error.body
                        body = json.dumps(body, indent=2)
                        if idempotency and method == 'POST':
                            server.idempotent[key, idempotency] = (
                                status, body)
                self._send(status, body, 'application/json',
                    {'Request-Id': request_id, 'Stripe-Version': API_VERSION,
                        **({'Idempotency-Key': idempotency}
                            if idempotency else {})})

            def _send(self, status, body, content_type, headers=None):
                data = body.encode()
                self.send_response(status)
                self._cors()
                self.send_header('Content-Type', content_type)
                self.send_header('Content-Length', str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
        return Handler


def _raise(error):
    raise error
