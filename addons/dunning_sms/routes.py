"""Twilio's webhooks: delivery reports and the customers' replies.

Both are signed by Twilio with the auth token of the account (header
X-Twilio-Signature over the URL Twilio called and the form's fields): an
unsigned or forged request is refused and changes nothing.
"""
import re
import unicodedata
from http import HTTPStatus

from twilio.request_validator import RequestValidator

from trytond.protocols.wrappers import (
    Response, with_pool, with_transaction)
from trytond.transaction import Transaction
from trytond.wsgi import app

from .message import SMS

FORM = 'application/x-www-form-urlencoded'
# Twilio's standard opt-out and opt-in keywords, and the French ones;
# compared without case, accents or surrounding punctuation.
STOP_WORDS = {
    'STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'ARRET'}
START_WORDS = {'START', 'UNSTOP', 'YES', 'DEMARRER', 'REPRENDRE'}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Twilio's error codes are five digits; more would not fit the column.
ERROR_CODE = re.compile(r'[0-9]{1,9}')


def keyword(body):
    "ARRÊT, arret. and « Arrêt » are all ARRET"
    text = unicodedata.normalize('NFKD', body or '')
    text = ''.join(c for c in text if not unicodedata.combining(c))
    return text.strip(' \t\r\n.!?"\'«»').upper()


def problem(status, text):
    return Response(text, status=status, content_type='text/plain')


def webhook_url(pool, request, name):
    "The URL Twilio called, as configured for the public"
    Configuration = pool.get('account.configuration')
    url = Configuration(1).sms_webhook_url(pool.database_name, name)
    if url and request.query_string:
        url += '?' + request.query_string.decode('latin-1')
    return url


def signed(request, url, tokens):
    signature = request.headers.get('X-Twilio-Signature')
    if not (url and signature):
        return False
    params = request.form.to_dict(flat=True)
    return any(RequestValidator(token).validate(url, params, signature)
        for token in tokens if token)


def form_problem(request):
    if request.mimetype != FORM:
        return problem(HTTPStatus.BAD_REQUEST,
            f"The body must be {FORM}, not "
            f"{request.mimetype or 'without a content type'}.")


@app.route('/<database_name>/dunning_sms/status', methods={'POST'})
@with_pool
@with_transaction(context={'_check_access': False})
def status(request, pool):
    "Twilio reports what became of an SMS"
    Message = pool.get('account.dunning.message')
    Configuration = pool.get('account.configuration')
    if response := form_problem(request):
        return response
    message_id = request.args.get('message', type=int)
    sid = request.form.get('MessageSid')
    messages = Message.search([
            ('channel', '=', SMS),
            ['OR',
                ('id', '=', message_id),
                ('sms_sid', '=', sid),
                ],
            ], limit=1)
    settings = messages and Configuration(1).sms_settings(
        messages[0].company)
    url = webhook_url(pool, request, 'status')
    if not (settings and signed(request, url, [settings['sms_auth_token']])):
        return problem(HTTPStatus.FORBIDDEN, "Invalid Twilio signature.")
    # Wait for the sending transaction if it is still storing the SID.
    Message.lock(messages)
    message, = Message.browse(messages)
    if message.sms_sid and message.sms_sid != sid:
        return problem(HTTPStatus.CONFLICT,
            f"Message {message.id} was sent as {message.sms_sid}.")
    if not request.form.get('MessageStatus'):
        return problem(HTTPStatus.BAD_REQUEST,
            "MessageStatus is missing. Nothing was changed.")
    error_code = request.form.get('ErrorCode') or None
    if error_code is not None and not ERROR_CODE.fullmatch(error_code):
        return problem(HTTPStatus.BAD_REQUEST,
            f"ErrorCode must be a Twilio error number, not "
            f"{error_code[:20]!r}. Nothing was changed.")
    Message.sms_report(message, request.form['MessageStatus'],
        int(error_code) if error_code else None)
    return Response(status=HTTPStatus.NO_CONTENT)


@app.route('/<database_name>/dunning_sms/inbound', methods={'POST'})
@with_pool
@with_transaction(context={'_check_access': False})
def inbound(request, pool):
    "A customer replies: STOP and START change their consent to SMS"
    ConfigurationSMS = pool.get('account.configuration.dunning_sms')
    ContactMechanism = pool.get('party.contact_mechanism')
    Consent = pool.get('account.dunning.consent')
    if response := form_problem(request):
        return response
    account_sid = request.form.get('AccountSid')
    configurations = ConfigurationSMS.search([
            ('sms_account_sid', '=', account_sid),
            ]) if account_sid else []
    url = webhook_url(pool, request, 'inbound')
    configuration = next((c for c in configurations
            if signed(request, url, [c.sms_auth_token])), None)
    if not configuration:
        return problem(HTTPStatus.FORBIDDEN, "Invalid Twilio signature.")
    word = keyword(request.form.get('Body'))
    if word in STOP_WORDS | START_WORDS:
        number = request.form.get('From')
        parties = {m.party for m in ContactMechanism.search([
                    ('type', 'in', ['mobile', 'phone']),
                    ('value_compact', '=', number),
                    ])}
        # Twilio's request names no company: the reply is the one of the
        # company whose account it reached, and audited as such.
        company = configuration.company.id if configuration.company else None
        proof = (f"MessageSid={request.form.get('MessageSid')} "
            f"From={number} Body={request.form.get('Body')}")
        with Transaction().set_context(company=company):
            Consent.set_consent(list(parties), SMS, word in START_WORDS,
                'reply', proof=proof)
    return Response(EMPTY_TWIML, content_type='text/xml')
