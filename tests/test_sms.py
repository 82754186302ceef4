"""Reminders by SMS through the real Twilio SDK and a local Twilio, with
delivery reports and replies posted to trytond's webhooks."""
import datetime as dt
import json

import pytest
from proteus import Model

from trytond import config as trytond_config
from trytond.model.modelview import AccessButtonError

from conftest import YEAR, make_customer, make_invoice, run_dunning
from twilio_server import TwilioServer

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)
ACCOUNT_SID = 'AC' + '1' * 32
AUTH_TOKEN = 'auth-token-' + '7' * 21
API_KEY_SID = 'SK' + '2' * 32
API_KEY_SECRET = 'api-key-secret-' + '9' * 17
SENDER = '+33700000000'
FORM = 'application/x-www-form-urlencoded'


def day(offset):
    return DUE + dt.timedelta(days=offset)


@pytest.fixture
def twilio(tryton_sms):
    "The local Twilio, and the company set up to send through it"
    server = TwilioServer(ACCOUNT_SID, AUTH_TOKEN,
        credentials={API_KEY_SID: API_KEY_SECRET}).start()
    trytond_config.add_section('dunning_sms')
    trytond_config.set('dunning_sms', 'api_url', server.url)
    trytond_config.set('dunning_sms', 'callback_url', 'http://localhost')
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.sms_account_sid = ACCOUNT_SID
    configuration.sms_auth_token = AUTH_TOKEN
    configuration.sms_from_number = SENDER
    configuration.save()
    try:
        yield server
    finally:
        server.stop()
        trytond_config.remove_section('dunning_sms')


@pytest.fixture
def client():
    from werkzeug.test import Client

    from trytond.wsgi import app
    return Client(app)


def customer(name, mobile=None, email=None, lang='en'):
    "A customer in France, its mobile written the French way"
    Country = Model.get('country.country')
    france, = Country.find([('code', '=', 'FR')]) or [
        Country(name="France", code='FR')]
    france.save()
    party = make_customer(name, email, lang=lang)
    party.addresses[0].country = france
    if mobile:
        party.contact_mechanisms.new(type='mobile', value=mobile)
    party.save()
    return party


def message_of(party, channel=None, **domain):
    Message = Model.get('account.dunning.message')
    clauses = [('party', '=', party.id)] + [
        (k, '=', v) for k, v in domain.items()]
    if channel:
        clauses.append(('channel', '=', channel))
    return Message.find(clauses)


def audits(party, kind):
    Audit = Model.get('account.dunning.audit')
    return Audit.find([('party', '=', party.id), ('kind', '=', kind)])


def write_legacy_number(database, party, value):
    """A number stored before Tryton checked numbers (party checks them
    only with phonenumbers installed, and only when they are written)"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(database, 0) as transaction:
        contact = Pool(database).get('party.contact_mechanism').__table__()
        cursor = transaction.connection.cursor()
        cursor.execute(*contact.insert(
                [contact.party, contact.type, contact.value,
                    contact.active, contact.sequence],
                [[party.id, 'mobile', value, True, 10]]))
        transaction.commit()


def requeue(database, message):
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(database, 0) as transaction:
        table = Pool(database).get('account.dunning.message').__table__()
        cursor = transaction.connection.cursor()
        cursor.execute(*table.update([table.state], ['queued'],
                where=table.id == message.id))
        transaction.commit()


def test_sms_delivered_then_stopped(tryton_sms, twilio, client, mailbox):
    database = tryton_sms['config'].database_name
    martin = customer("Garage Martin", '06 12 34 56 78',
        'compta@garage-martin.example')
    legacy = customer("Atelier Ancien", email='ancien@atelier.example')
    write_legacy_number(database, legacy, '12')
    make_invoice(tryton_sms, martin, '1234.56', INVOICE_DATE)
    make_invoice(tryton_sms, legacy, '80.00', INVOICE_DATE)

    run_dunning(day(-7))

    sms, = twilio.messages
    assert sms['to'] == '+33612345678' and sms['from'] == SENDER
    assert sms['body'] == (
        "Dunder Mifflin: hello Garage Martin, $1,234.56 falls due on "
        "04/01/2026. See and pay your invoices: "
        "https://portal.pieces-auto.example Reply STOP to opt out")
    message, = message_of(martin)
    assert message.channel == 'sms' and message.state == 'sent'
    assert message.sms_sid == sms['sid'] and message.sms_status == 'queued'
    assert message.sms_segments == 1
    assert sms['status_callback'] == (
        f'http://localhost/{database}/dunning_sms/status'
        f'?message={message.id}')

    # The number no SMS can reach is reported, once, and email is used.
    mechanism, = [m for m in legacy.contact_mechanisms
        if m.type == 'mobile']
    mechanism.reload()
    assert mechanism.dunning_sms_error.startswith("SMS number invalid: ")
    assert len(audits(legacy, 'sms_number_invalid')) == 1
    email, = message_of(legacy)
    assert email.channel == 'email' and email.state == 'sent'
    assert [m['To'] for m in mailbox.messages] == [
        'Atelier Ancien <ancien@atelier.example>']

    # Delivery reports: refused unless Twilio signed them, and the body
    # must be a form.
    url, params = twilio.status_callback(sms, 'delivered')
    unsigned = twilio.post(client, url, params, sign=False)
    forged = twilio.post(client, url, params, auth_token='not-the-token')
    as_json = client.post(url.removeprefix('http://localhost'),
        data=json.dumps(params), content_type='application/json',
        headers=twilio.signed(url, params)[0])
    assert (unsigned.status_code, forged.status_code) == (403, 403)
    assert as_json.status_code == 400
    assert FORM in as_json.get_data(as_text=True)
    message.reload()
    assert message.sms_status == 'queued', "nothing changed"

    for status in ['sent', 'delivered', 'sent']:
        url, params = twilio.status_callback(sms, status)
        assert twilio.post(client, url, params).status_code == 204
    message.reload()
    assert message.sms_status == 'delivered', "a status never goes back"

    # The customer replies STOP: no more SMS, email instead.
    inbound = f'http://localhost/{database}/dunning_sms/inbound'
    stop = twilio.inbound('+33612345678', SENDER, " Stop ")
    assert twilio.post(client, inbound, stop, sign=False).status_code == 403
    martin.reload()
    assert martin.dunning_sms_consent
    answer = twilio.post(client, inbound, stop)
    assert answer.status_code == 200 and answer.mimetype == 'text/xml'
    assert answer.get_data(as_text=True).endswith('<Response/>')
    martin.reload()
    assert not martin.dunning_sms_consent
    Consent = Model.get('account.dunning.consent')
    consent, = Consent.find([('party', '=', martin.id)])
    assert (consent.channel, consent.source) == ('sms', 'reply')
    assert stop['MessageSid'] in consent.proof and "Stop" in consent.proof
    entry, = audits(martin, 'consent_changed')
    assert entry.company.id == tryton_sms['config'].context['company'], (
        "the company's accountants see the reply in its audit log")

    run_dunning(day(0))
    assert len(twilio.messages) == 1
    due, = message_of(martin, date=day(0))
    assert due.channel == 'email' and due.state == 'sent'
    assert len(audits(legacy, 'sms_number_invalid')) == 1

    # ... until they write back in French to start again.
    start = twilio.inbound('+33612345678', SENDER, "Démarrer")
    assert twilio.post(client, inbound, start).status_code == 200
    run_dunning(day(3))
    assert len(twilio.messages) == 2
    overdue, = message_of(martin, date=day(3))
    assert overdue.channel == 'sms' and overdue.state == 'sent'


def test_provider_errors(tryton_sms, twilio, client, mailbox):
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.sms_api_key_sid = API_KEY_SID
    configuration.sms_api_key_secret = API_KEY_SECRET
    configuration.save()
    invalid = customer("Invalid", '06 11 11 11 11', 'invalid@example.com')
    busy = customer("Busy", '06 22 22 22 22', 'busy@example.com')
    stopped = customer("Stopped", '06 33 33 33 33', 'stopped@example.com')
    fine = customer("Fine", '06 44 44 44 44', 'fine@example.com')
    for party in [invalid, busy, stopped, fine]:
        make_invoice(tryton_sms, party, '100.00', INVOICE_DATE)
    twilio.fail_next(21211, to='+33611111111')
    twilio.fail_next(20429, to='+33622222222')
    twilio.fail_next(21610, to='+33633333333')

    run_dunning(day(-7))

    assert [m['to'] for m in twilio.messages] == ['+33644444444']
    # 21211: the number is marked, the reminder goes by email, once.
    sms, = message_of(invalid, 'sms')
    assert sms.state == 'failed' and sms.next_attempt is None
    assert "21211" in sms.last_error
    mechanism, = invalid.contact_mechanisms[1:]
    mechanism.reload()
    assert "is not a valid phone number" in mechanism.dunning_sms_error
    assert len(audits(invalid, 'sms_number_invalid')) == 1
    email, = message_of(invalid, 'email')
    assert email.state == 'sent'
    assert email.key == f'{invalid.id}:email:{sms.level.id}:{day(-7)}'
    # 21610: the provider's opt-out is the customer's.
    sms, = message_of(stopped, 'sms')
    assert sms.state == 'failed'
    stopped.reload()
    assert not stopped.dunning_sms_consent
    Consent = Model.get('account.dunning.consent')
    consent, = Consent.find([('party', '=', stopped.id)])
    assert consent.source == 'provider'
    email, = message_of(stopped, 'email')
    assert email.state == 'sent'
    assert sorted(m['To'] for m in mailbox.messages) == [
        'Invalid <invalid@example.com>', 'Stopped <stopped@example.com>']
    # 429: still queued, to try again later; never counted as sent.
    throttled, = message_of(busy)
    assert throttled.state == 'queued' and throttled.sms_sid is None
    assert "20429" in throttled.last_error and "429" in throttled.last_error
    assert throttled.next_attempt and throttled.attempts == 1
    # No secret in any error.
    Message = Model.get('account.dunning.message')
    for message in Message.find([]):
        for secret in [AUTH_TOKEN, API_KEY_SECRET]:
            assert secret not in (message.last_error or '')

    # Twilio cannot be reached: still queued, with why.
    twilio.stop()
    throttled.click('retry')
    throttled.reload()
    assert throttled.state == 'queued' and throttled.attempts == 2
    assert "could not be reached" in throttled.last_error
    twilio.start()
    throttled.click('retry')
    throttled.reload()
    assert throttled.state == 'sent' and throttled.last_error is None

    # Sent is sent: not even a worker that finds it queued again (its
    # state lost after Twilio took it) sends it twice.
    sent, = message_of(fine)
    with pytest.raises(AccessButtonError):
        sent.click('retry')
    requeue(tryton_sms['config'].database_name, sent)
    sent.reload()
    assert sent.state == 'queued' and sent.sms_sid
    sent.click('retry')
    sent.reload()
    assert sent.state == 'sent'
    run_dunning(day(-6))
    assert sorted(m['to'] for m in twilio.messages) == [
        '+33622222222', '+33644444444']
    # Four on the first run, one on the retry that went through.
    assert twilio.requests == 5
    assert len(mailbox.messages) == 2
