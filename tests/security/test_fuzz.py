"""Every route of our modules, and the Stripe webhook we wrap, fed malformed
requests: truncated, huge and deeply nested JSON, wrong types, bytes that
are not UTF-8, 1 MB fields, wrong methods, missing and forged headers;
anonymously and as a logged-in customer, with and without the CSRF token,
and to the webhooks also correctly signed, so that the body reaches the
code that reads it.

No answer may be a 5xx; a 4xx says what is wrong in its body; and what
no valid form or event was sent for writes nothing."""
import datetime as dt
import hashlib
import json
import string
from collections import Counter
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proteus import Model
from twilio.request_validator import RequestValidator
from werkzeug.routing import IntegerConverter
from werkzeug.test import Client

from conftest import YEAR, make_customer, make_invoice, world
from portal_support import PASSWORD, make_portal_user
from stripe_server import sign as stripe_sign

MODULES = ['dunning_advanced', 'dunning_sms', 'dunning_portal']
OUR_PACKAGES = tuple(f'trytond.modules.{m}' for m in MODULES)
EXAMPLES = 25
AUTH_TOKEN = 'f' * 32
WEBHOOK_SECRET = 'whsec_' + 'e' * 32
EMAIL = 'fuzz@garage.example'
CSRF_COOKIE = 'dunning_portal_csrf'
SMS_SID = 'SM' + '0' * 32
# Sent to every route, each with every method it answers, signed or not,
# anonymously and as the customer
CORPUS = [
    ('application/json', ('[' * 100_000 + ']' * 100_000).encode()),
    ('application/json', b'{"data": {"object": ' * 1000),
    ('application/json', b'{"id": 1, "type": ["x"], "data": "object"}'),
    ('application/json', b'{"id": "evt_1", "type": "payment_intent.'
        b'succeeded", "data": {"object": {"id": 7, "amount": "NaN"}}}'),
    ('application/x-www-form-urlencoded',
        b'MessageSid=' + SMS_SID.encode() + b'&MessageStatus=delivered'
        b'&ErrorCode=abc'),
    ('application/x-www-form-urlencoded',
        b'MessageSid=' + SMS_SID.encode() + b'&MessageStatus=%ff%fe'
        b'&ErrorCode=30003&From=%00'),
    ('application/x-www-form-urlencoded',
        b'AccountSid=AC' + b'a' * 32 + b'&From=%2B33600000000&Body=%ff%fe'
        b'&MessageSid=' + b'9' * 5000),
    ('application/x-www-form-urlencoded',
        b'email=\xff\xfe&amount=1e309&invoice=-1&invoice=x&date=2026-02-30'),
    ('application/x-www-form-urlencoded',
        urlencode({'amount': '9' * 1_000_000}).encode()),
    ('text/plain', b'\xff\xfe\xc3('),
    (None, b''),
    ]
# What the routes' forms and the providers' requests name
FIELDS = ['email', 'password', 'csrf_token', 'invoice', 'amount', 'next',
    'language', 'reason', 'comment', 'date', 'instalments', 'first_date',
    'channel', 'email_consent', 'sms_consent', 'portal_consent', 'score',
    'ease', 'answer', 'MessageSid', 'MessageStatus', 'ErrorCode', 'From',
    'To', 'Body', 'AccountSid', 'id', 'type', 'data', 'object']
METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH']
CONTENT_TYPES = [None, 'application/json', 'text/plain',
    'application/x-www-form-urlencoded', 'multipart/form-data',
    'application/x-www-form-urlencoded; charset=latin-1']
# Rows that state what happened to a customer: none may appear, change or
# vanish for a request that was refused.
STATE_TABLES = [
    'account_dunning', 'account_dunning_audit', 'account_dunning_message',
    'account_dunning_consent', 'account_dunning_plan',
    'account_dunning_plan_instalment',
    'account_dunning_survey_answer', 'account_dunning_task',
    'account_dunning_collection', 'account_payment',
    'account_payment_stripe_event', 'account_move', 'account_move_line',
    'account_invoice', 'party_party', 'web_user', 'web_user_portal_link',
    ]


@pytest.fixture(scope='module')
def shop():
    """Our three modules, a customer with an invoice and a portal login,
    Twilio and Stripe accounts whose signatures the test can make"""
    for shop in world(MODULES):
        Configuration = Model.get('account.configuration')
        configuration = Configuration(1)
        configuration.dunning_portal_url = 'http://localhost'
        configuration.sms_account_sid = 'AC' + 'a' * 32
        configuration.sms_auth_token = AUTH_TOKEN
        configuration.sms_from_number = '+15005550006'
        configuration.save()
        party = make_customer("Garage Fuzz", EMAIL)
        make_invoice(shop, party, '120.00', dt.date(YEAR, 9, 1))
        make_portal_user(party, EMAIL)
        StripeAccount = Model.get('account.payment.stripe.account')
        account = StripeAccount(name="Stripe",
            secret_key='sk_test_' + 'a' * 24,
            publishable_key='pk_test_' + 'b' * 24)
        account.save()
        account.click('new_identifier')
        account.webhook_signing_secret = WEBHOOK_SECRET
        account.save()
        shop['stripe_identifier'] = account.webhook_identifier
        shop['sms_id'] = sent_sms(shop['config'], party.id)
        yield shop


def sent_sms(config, party_id):
    "An SMS of the outbox that Twilio's status reports can name"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(config.database_name, 0,
            context=config.context) as transaction:
        Message = Pool().get('account.dunning.message')
        message, = Message.create([{
                    'company': config.context['company'],
                    'party': party_id, 'channel': 'sms',
                    'date': dt.date(YEAR, 10, 1), 'key': 'fuzz-sms',
                    'state': 'sent', 'sms_sid': SMS_SID}])
        transaction.commit()
        return message.id


def our_rules():
    from trytond.wsgi import app
    return [rule for rule in app.url_map.iter_rules()
        if rule.endpoint.__module__.startswith(OUR_PACKAGES)]


def row_counts(database):
    "A fingerprint of every table of STATE_TABLES: count and content"
    from trytond.transaction import Transaction
    fingerprint = {}
    with Transaction().start(database, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        for table in STATE_TABLES:
            cursor.execute(f'SELECT * FROM "{table}" ORDER BY id')
            rows = cursor.fetchall()
            fingerprint[table] = (len(rows),
                hashlib.sha256(repr(rows).encode()).hexdigest())
    return fingerprint


def set_cookie(response, name):
    "The value response sets for cookie name, if it sets it"
    for header in response.headers.getlist('Set-Cookie'):
        key, _, rest = header.partition('=')
        if key == name:
            return rest.split(';', 1)[0]


def customer_client(database, with_login):
    "A client and the CSRF token it holds, if it logged in"
    from trytond.wsgi import app
    client = Client(app)
    csrf = None
    if with_login:
        login = f'/{database}/portal/login'
        csrf = set_cookie(client.get(login), CSRF_COOKIE)
        response = client.post(login, data={'email': EMAIL,
                'password': PASSWORD, 'csrf_token': csrf})
        assert response.status_code == 303, "the customer is logged in"
        csrf = set_cookie(response, CSRF_COOKIE)
    return client, csrf


def nested(depth):
    return '[' * depth + ']' * depth


@st.composite
def bodies(draw):
    "(content type, body bytes) of a malformed or merely odd request"
    kind = draw(st.sampled_from(['nested', 'truncated', 'json', 'bytes',
                'huge', 'form', 'empty']))
    if kind == 'nested':
        depth = draw(st.sampled_from([50, 1000, 100_000]))
        text = (nested(depth) if draw(st.booleans())
            else '{"data": {"object": ' * depth)
        return 'application/json', text.encode()
    if kind in {'truncated', 'json'}:
        value = draw(st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=20),
                lambda inner: st.lists(inner, max_size=4)
                | st.dictionaries(st.sampled_from(FIELDS) | st.text(
                        max_size=8), inner, max_size=4),
                max_leaves=12))
        text = json.dumps(value)
        if kind == 'truncated' and len(text) > 1:
            text = text[:draw(st.integers(1, len(text) - 1))]
        return 'application/json', text.encode()
    if kind == 'bytes':
        return (draw(st.sampled_from(CONTENT_TYPES)),
            draw(st.binary(max_size=200)) + b'\xff\xfe\xc3(')
    if kind == 'huge':
        field = draw(st.sampled_from(FIELDS))
        return ('application/x-www-form-urlencoded',
            urlencode({field: 'x' * 1_000_000}).encode())
    if kind == 'form':
        values = draw(st.dictionaries(st.sampled_from(FIELDS),
                st.one_of(st.text(max_size=30), st.integers().map(str),
                    st.sampled_from(['', '-1', '1e309', 'NaN', 'inf',
                            '0' * 40, '1' * 40, '9' * 400, '2026-02-30',
                            "' OR 1=1 --", '<script>', '%00'])),
                max_size=6))
        return (draw(st.sampled_from(CONTENT_TYPES)),
            urlencode(values).encode('utf-8', 'surrogatepass'))
    return draw(st.sampled_from(CONTENT_TYPES)), b''


def path_value(converter):
    if isinstance(converter, IntegerConverter):
        return st.integers(0, 10 ** 30).map(str)
    return st.text(string.ascii_letters + string.digits + '-_.~%é/',
        min_size=1, max_size=80).map(lambda t: quote(t, safe='/'))


def request_strategy(rule, shop):
    variables = {name: path_value(converter)
        for name, converter in rule._converters.items()
        if name != 'database_name'}
    if 'account' in variables:
        variables['account'] = st.just(shop['stripe_identifier']) | (
            variables['account'])
    return st.fixed_dictionaries({
            'path': st.fixed_dictionaries(variables),
            'method': st.sampled_from(sorted(rule.methods - {'OPTIONS'}))
            | st.sampled_from(METHODS),
            'query': st.dictionaries(st.sampled_from(FIELDS + ['message']),
                st.text(max_size=20), max_size=3),
            'body': bodies(),
            'signed': st.booleans(),
            'client': st.sampled_from(['anonymous', 'customer']),
            })


def build_path(rule, database, values):
    path = rule.rule.replace('<database_name>', database)
    for name, converter in rule._converters.items():
        if name == 'database_name':
            continue
        placeholder = next(part for part in [
                f'<{name}>', *(f'<{c}:{name}>' for c in [
                        'int', 'path', 'string', 'stripe_account'])]
            if part in path)
        path = path.replace(placeholder, values[name])
    return path


def provider_signatures(path, query, content_type, body):
    "The headers Twilio or Stripe would send for this request"
    if '/dunning_sms/' in path:
        # The portal's address is the one Twilio is told to call.
        url = 'http://localhost/dunning_sms/' + path.split(
            '/dunning_sms/', 1)[1] + ('?' + urlencode(query) if query else '')
        params = dict(parse_qsl(body.decode('ascii', 'replace'),
                keep_blank_values=True, errors='replace'))
        return {'X-Twilio-Signature':
            RequestValidator(AUTH_TOKEN).compute_signature(url, params)}
    if '/account_payment_stripe/' in path:
        return {'Stripe-Signature': stripe_sign(
                body.decode('utf-8', 'replace'), WEBHOOK_SECRET)}
    return {}


def plain_path_values(rule, shop):
    "A value of each variable of rule that names something that exists"
    values = {}
    for name, converter in rule._converters.items():
        if name == 'account':
            values[name] = shop['stripe_identifier']
        elif isinstance(converter, IntegerConverter):
            values[name] = '1'
        elif name != 'database_name':
            values[name] = 'x'
    return values


def corpus(rule, shop):
    "The requests every route gets, whatever hypothesis draws"
    methods = sorted(rule.methods - {'OPTIONS'})
    wrong = next(m for m in ['PUT', 'DELETE'] if m not in rule.methods)
    query = {'message': str(shop['sms_id'])} if 'dunning_sms' in (
        rule.rule) else {}
    for method in methods:
        for body in CORPUS:
            for client in ['anonymous', 'customer']:
                yield {'path': plain_path_values(rule, shop),
                    'method': method, 'query': query, 'body': body,
                    'signed': True, 'client': client}
    yield {'path': plain_path_values(rule, shop), 'method': wrong,
        'query': {}, 'body': CORPUS[0], 'signed': False,
        'client': 'customer'}


def fuzz(rule, shop, clients, with_csrf, answers, failures):
    database = shop['config'].database_name

    def send(request):
        path = build_path(rule, database, request['path'])
        content_type, body = request['body']
        headers = {}
        if request['signed']:
            headers.update(provider_signatures(
                    path, request['query'], content_type, body))
        client, csrf = clients[request['client']]
        if with_csrf and csrf:
            headers['X-CSRF-Token'] = csrf
        response = client.open(path, method=request['method'],
            query_string=request['query'], data=body, headers=headers,
            content_type=content_type)
        status = response.status_code
        answers[rule.rule, status] += 1
        text = response.get_data()
        if status >= 500 or (400 <= status < 500
                and request['method'] != 'HEAD' and not text.strip()):
            failures.setdefault(rule.rule, (request['method'], path,
                    content_type, body[:120], status, text[:300]))

    for request in corpus(rule, shop):
        send(request)
    settings(max_examples=EXAMPLES, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck))(
        given(request_strategy(rule, shop))(send))()


def test_fuzz_every_route(shop, record_property):
    database = shop['config'].database_name
    rules = our_rules()
    assert len(rules) >= 25, "every portal page, webhook and link is here"
    answers, failures = Counter(), {}
    clients = {'anonymous': customer_client(database, False),
        'customer': customer_client(database, True)}
    before = row_counts(database)
    for rule in rules:
        fuzz(rule, shop, clients, False, answers, failures)
    changed = {table for table, value in row_counts(database).items()
        if before[table] != value}
    for rule in rules:
        fuzz(rule, shop, clients, True, answers, failures)

    routes = {rule for rule, _ in answers}
    summary = (f"fuzz: {sum(answers.values())} requests to "
        f"{len(routes)} routes, {len(failures)} routes answered 5xx "
        "or an empty 4xx")
    record_property('fuzz', summary)
    print(summary)
    for route in sorted(routes):
        print(route, dict(sorted((status, count)
                    for (rule, status), count in answers.items()
                    if rule == route)))
    problems = [f'{rule}: {method} {path} {content_type} {body!r} -> '
        f'{status} {text!r}' for rule, (method, path, content_type, body,
            status, text) in sorted(failures.items())]
    if changed:
        problems.append(f"refused requests wrote to {sorted(changed)}")
    assert not problems, '\n'.join(problems)

