"""The sms channel of the outbox: texts, sending through Twilio, delivery
status, and what a refused recipient changes."""
from decimal import Decimal

from requests import RequestException
from twilio.base.exceptions import (
    TwilioException, TwilioRestException, TwilioServiceException)
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from trytond import config as trytond_config
from trytond.i18n import gettext
from trytond.model import fields
from trytond.modules.dunning_advanced.engine import LETTER, Cadence
from trytond.modules.dunning_advanced.message import PLACEHOLDER
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction

from .exceptions import SMSError, SMSRecipientError
from .segment import gsm_friendly

SMS = 'sms'
# https://www.twilio.com/docs/errors/21211, 21614: not a (mobile) number
INVALID_NUMBER_CODES = {21211, 21614}
# https://www.twilio.com/docs/errors/21610: the recipient replied STOP
UNSUBSCRIBED_CODE = 21610
STATUS_SELECTION = [
    (None, ""),
    ('queued', "Queued"),
    ('sent', "Sent"),
    ('delivered', "Delivered"),
    ('undelivered', "Undelivered"),
    ('failed', "Failed"),
    ]
# Twilio's statuses as ours, with their rank: callbacks may arrive out of
# order and a status never goes back.
TWILIO_STATUSES = {
    'accepted': ('queued', 0),
    'scheduled': ('queued', 0),
    'queued': ('queued', 0),
    'sending': ('queued', 0),
    'sent': ('sent', 1),
    'delivered': ('delivered', 2),
    'read': ('delivered', 2),
    'undelivered': ('undelivered', 2),
    'failed': ('failed', 2),
    'canceled': ('failed', 2),
    }
STATUS_RANK = {status: rank for status, rank in TWILIO_STATUSES.values()}
SMS_KINDS = [
    ('sms_number_invalid', "SMS Number Invalid"),
    ('sms_not_delivered', "SMS Not Delivered"),
    ]


def twilio_client(settings):
    "A client of the REST API with the company's credentials"
    pool = Pool()
    Configuration = pool.get('account.configuration')
    http_client = TwilioHttpClient(timeout=trytond_config.getfloat(
            'dunning_sms', 'timeout', default=30))
    if settings['sms_api_key_sid'] and settings['sms_api_key_secret']:
        client = Client(settings['sms_api_key_sid'],
            settings['sms_api_key_secret'], settings['sms_account_sid'],
            http_client=http_client)
    else:
        client = Client(settings['sms_account_sid'],
            settings['sms_auth_token'], http_client=http_client)
    client.api.base_url = Configuration.sms_api_url()
    return client


def scrub(text, settings):
    "text without any secret of settings, whatever the provider echoed"
    for name in ('sms_auth_token', 'sms_api_key_secret'):
        if settings.get(name):
            text = text.replace(settings[name], '***')
    return text


class Message(metaclass=PoolMeta):
    __name__ = 'account.dunning.message'
    sms_sid = fields.Char("SMS SID", readonly=True,
        help="The message as Twilio knows it: once set, never sent again.")
    sms_status = fields.Selection(STATUS_SELECTION, "SMS Status",
        readonly=True, help="As the carrier last reported it.")
    sms_error_code = fields.Integer("SMS Error Code", readonly=True,
        help="Why the carrier did not deliver the SMS: "
        "https://www.twilio.com/docs/errors")
    sms_segments = fields.Integer("SMS Segments", readonly=True,
        help="How many SMS the text cost.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        for field in (cls.sms_sid, cls.sms_status, cls.sms_error_code,
                cls.sms_segments):
            field.states = {'invisible': Eval('channel') != SMS}

    @classmethod
    def get_channels(cls):
        return super().get_channels() + [(SMS, "SMS")]

    @classmethod
    def copy(cls, messages, default=None):
        default = default.copy() if default else {}
        for name in ['sms_sid', 'sms_status', 'sms_error_code',
                'sms_segments']:
            default.setdefault(name, None)
        return super().copy(messages, default=default)

    def _send_sms(self):
        pool = Pool()
        Configuration = pool.get('account.configuration')
        if self.sms_sid:
            # Twilio took it in an earlier attempt whose end was lost.
            return
        config = Configuration(1)
        settings = config.sms_settings(self.company)
        if not settings:
            raise SMSError(gettext('dunning_sms.msg_sms_not_configured',
                    company=self.company.rec_name))
        if not self.recipient:
            raise SMSError(gettext('dunning_sms.msg_sms_no_recipient',
                    party=self.party.rec_name))
        if settings['sms_messaging_service_sid']:
            sender = {
                'messaging_service_sid': (
                    settings['sms_messaging_service_sid']),
                }
        else:
            sender = {'from_': settings['sms_from_number']}
        try:
            sent = twilio_client(settings).messages.create(
                to=self.recipient, body=self.body,
                status_callback=self.sms_status_callback(config), **sender)
        except (TwilioRestException, TwilioServiceException) as exception:
            # The legacy and the RFC 9457 errors of the API
            error = scrub(gettext('dunning_sms.msg_sms_refused',
                    code=exception.code or '', status=exception.status,
                    error=getattr(exception, 'msg', None)
                    or exception.detail or exception.title), settings)
            if exception.code in INVALID_NUMBER_CODES:
                self.sms_number_refused(error)
                raise SMSRecipientError(error) from exception
            if exception.code == UNSUBSCRIBED_CODE:
                self.sms_recipient_unsubscribed(error)
                raise SMSRecipientError(error) from exception
            raise SMSError(error) from exception
        except (RequestException, TwilioException) as exception:
            raise SMSError(scrub(gettext('dunning_sms.msg_sms_unreachable',
                        error=str(exception)), settings)) from exception
        self.sms_sid = sent.sid
        self.sms_status = TWILIO_STATUSES.get(sent.status, ('queued', 0))[0]
        if sent.num_segments:
            self.sms_segments = int(sent.num_segments)

    def sms_status_callback(self, config):
        url = config.sms_webhook_url(
            Transaction().database.name, 'status')
        if url:
            # The message is found even if the report comes before the
            # sending transaction commits its SID.
            return f'{url}?message={self.id}'

    def _failed(self, exception, now):
        super()._failed(exception, now)
        if isinstance(exception, SMSRecipientError):
            self.state = 'failed'
            self.next_attempt = None
            self.sms_status = 'failed'

    def sms_number_refused(self, error):
        "Twilio says the number is none: mark it and use the next channel"
        pool = Pool()
        ContactMechanism = pool.get('party.contact_mechanism')
        ContactMechanism.flag_sms_invalid(
            ContactMechanism.sms_mechanisms(self.party, self.recipient),
            error, message=self)
        self.queue_fallback()

    def sms_recipient_unsubscribed(self, error):
        "The recipient replied STOP to Twilio, which blocks the number"
        pool = Pool()
        Consent = pool.get('account.dunning.consent')
        Consent.set_consent([self.party], SMS, False, 'provider',
            proof=f'{self.key} {self.recipient}: {error}')
        self.queue_fallback()

    def queue_fallback(self):
        """Queue this reminder on the next channel that reaches the party,
        under that channel's own key: never twice, whoever queues it."""
        pool = Pool()
        Run = pool.get('account.dunning.run')
        Segment = pool.get('account.dunning.segment')
        Audit = pool.get('account.dunning.audit')
        party_id = self.party.id
        recipients = Run.load_recipients(
            self.company, [party_id]).get(party_id, {})
        withdrawn = Run.load_withdrawn(
            self.company, [party_id]).get(party_id, frozenset())
        segments = Segment.search([
                ('company', '=', self.company.id),
                ('party', '=', party_id),
                ], limit=1)
        cadence = Cadence.of(self.level.procedure.to_policy(),
            segments[0].segment if segments else None)
        channels = cadence.channels_of(self.level.to_rule(),
            frozenset(set(recipients) - set(withdrawn) - {SMS}))
        channel = next((c for c in channels if c != LETTER), LETTER)
        key = f'{party_id}:{channel}:{self.level.id}:{self.date.isoformat()}'
        Message = self.__class__
        if Message.search([('key', '=', key)], limit=1):
            return
        fallback, = Message.create([{
                    'company': self.company.id,
                    'party': party_id,
                    'channel': channel,
                    'level': self.level.id,
                    'tone': self.tone,
                    'date': self.date,
                    'recipient': recipients.get(channel),
                    'amount': self.amount,
                    'key': key,
                    'dunnings': [('add', [d.id for d in self.dunnings])],
                    }])
        Audit.record([Audit.entry('message_queued', party=self.party,
                    level=self.level, date=self.date, message=fallback,
                    amount=self.amount, lines=[d.line for d in self.dunnings],
                    reason=gettext('dunning_sms.msg_sms_fallback',
                        channel=channel))])
        Message.enqueue([fallback])

    @classmethod
    def sms_report(cls, message, status, error_code):
        """Record the status Twilio reports for the SMS of message, with its
        error number (an int) or None"""
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        new, rank = TWILIO_STATUSES.get(status, (None, -1))
        # Twilio posts a report again when it missed our answer: the same
        # status changes nothing the second time.
        if (new is None or new == message.sms_status
                or rank < STATUS_RANK.get(message.sms_status, -1)):
            return
        values = {'sms_status': new}
        if error_code:
            values['sms_error_code'] = error_code
        cls.write([message], values)
        if new in {'undelivered', 'failed'}:
            # Twilio's request has no company: the entry is the message's.
            with Transaction().set_context(company=message.company.id):
                Audit.record([Audit.entry('sms_not_delivered',
                            party=message.party, level=message.level,
                            message=message,
                            reason=gettext(
                                'dunning_sms.msg_sms_not_delivered',
                                status=new, code=error_code or ''))])


class Renderer(metaclass=PoolMeta):
    __name__ = 'account.dunning.renderer'

    @classmethod
    def render_one(cls, message, details, levels, texts, offers,
            template=None):
        "SMS: the level's SMS text, plain enough for GSM-7"
        pool = Pool()
        Template = pool.get('account.dunning.template')
        if message.channel == SMS and template is None:
            template = levels[message.level_id].sms_template_for(
                message.tone)
        if template is None or template.kind != SMS:
            return super().render_one(
                message, details, levels, texts, offers, template=template)
        # What is due already if anything is, else what reached the level
        statement = texts.statement(message.party_id, details, message.date)
        named = statement.overdue + statement.due_today or [
            details['lines'][l] for l in message.line_ids]
        values = {
            'amount': texts.money(statement.due_total or sum(
                    (l['amount'] for l in named), Decimal(0))),
            'due_date': texts.date(min(l['maturity_date'] for l in named)),
            }
        short = Template(name=template.name, kind=SMS, subject='',
            body=PLACEHOLDER.sub(
                lambda m: values.get(m.group(1), m.group(0)),
                template.body))
        recipient, _, body, _ = super().render_one(
            message, details, levels, texts, offers, template=short)
        return recipient, None, gsm_friendly(body).strip(), None


class Audit(metaclass=PoolMeta):
    __name__ = 'account.dunning.audit'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        selection = list(cls.kind.selection)
        selection.extend(k for k in SMS_KINDS if k not in selection)
        cls.kind.selection = selection
