"""Reminder templates, the outbox and its channels (email lives here)."""
import datetime as dt
import hashlib
import hmac
import html
import logging
import re
import smtplib
from collections import defaultdict
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr, formatdate

import trytond.config as config
from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin, Index, Model, ModelSQL, ModelView, Unique, fields)
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.sendmail import send_message
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .engine import NEUTRAL
from .engine import Message as EngineMessage
from .engine import next_level as next_level_of
from .segment import TONE_SELECTION

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r'\$\{([^}]*)\}')
PLACEHOLDERS = (
    'customer', 'contact', 'company', 'date', 'invoices', 'credits',
    'total_due', 'balance', 'days_late', 'consequence',
    'payment_instructions', 'discount_offer', 'portal_link', 'opt_out_link',
    'privacy_notice', 'accountant_contact',
    )
RETRY_DELAYS = (5, 15, 60, 240, 720, 1440)  # minutes, then every day
MAX_ATTEMPTS = 10
SENDABLE = {'queued', 'deferred'}


class Template(DeactivableMixin, ModelSQL, ModelView):
    "Dunning Message Template"
    __name__ = 'account.dunning.template'
    name = fields.Char("Name", required=True, translate=True)
    subject = fields.Char(
        "Subject", required=True, translate=True,
        help="Placeholders such as ${customer} are replaced when sending.")
    body = fields.Text(
        "Body", required=True, translate=True,
        help="Available placeholders: " + ", ".join(
            '${%s}' % p for p in PLACEHOLDERS))

    @classmethod
    def validate_fields(cls, templates, field_names):
        super().validate_fields(templates, field_names)
        if field_names & {'subject', 'body'}:
            for template in templates:
                template.check_placeholders()

    def check_placeholders(self):
        for text in (self.subject, self.body):
            for name in PLACEHOLDER.findall(text or ''):
                if name not in PLACEHOLDERS:
                    raise ValidationError(gettext(
                            'dunning_advanced.msg_template_unknown_placeholder',
                            template=self.name, placeholder=name,
                            placeholders=', '.join(PLACEHOLDERS)))

    @staticmethod
    def substitute(text, values):
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


class PreviewStart(ModelView):
    "Preview Dunning Template"
    __name__ = 'account.dunning.template.preview.start'
    party = fields.Many2One('party.party', "Party", required=True,
        help="A customer with open invoices: they fill the preview.")
    level = fields.Many2One('account.dunning.level', "Level", required=True,
        help="Its consequences and next level fill the preview.")
    date = fields.Date("Date", required=True)

    @classmethod
    def default_date(cls):
        return Pool().get('ir.date').today()


class PreviewResult(ModelView):
    "Preview Dunning Template"
    __name__ = 'account.dunning.template.preview.result'
    recipient = fields.Char("Recipient", readonly=True)
    subject = fields.Char("Subject", readonly=True)
    body = fields.Text("Body", readonly=True)


class Preview(Wizard):
    "Preview Dunning Template"
    __name__ = 'account.dunning.template.preview'
    start = StateView('account.dunning.template.preview.start',
        'dunning_advanced.template_preview_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Preview", 'preview', 'tryton-ok', default=True),
            ])
    preview = StateTransition()
    result = StateView('account.dunning.template.preview.result',
        'dunning_advanced.template_preview_result_view_form', [
            Button("Back", 'start', 'tryton-back'),
            Button("Close", 'end', 'tryton-close', default=True),
            ])

    def default_start(self, fields):
        pool = Pool()
        Level = pool.get('account.dunning.level')
        values = {'date': getattr(self.start, 'date', None)}
        party = getattr(self.start, 'party', None)
        level = getattr(self.start, 'level', None) or next(iter(Level.search([
                        'OR',
                        ('template', '=', self.record.id),
                        ('template_gentle', '=', self.record.id),
                        ('template_firm', '=', self.record.id),
                        ], limit=1)), None)
        if party:
            values['party'] = party.id
        if level:
            values['level'] = level.id
        return {k: v for k, v in values.items() if v is not None}

    def transition_preview(self):
        pool = Pool()
        Run = pool.get('account.dunning.run')
        Company = pool.get('company.company')
        Renderer = pool.get('account.dunning.renderer')
        company = Company(Transaction().context['company'])
        party, level, date = self.start.party, self.start.level, self.start.date
        context = Run.load_context(company, date)
        _, details = Run.load(company, date, [party.id], context)
        lines = [l for l in details['per_party'][party.id] if l['amount'] > 0]
        if not lines:
            raise ValidationError(gettext(
                    'dunning_advanced.msg_preview_no_lines',
                    party=party.rec_name))
        line_ids = tuple(l['id'] for l in lines)
        policy = context['policies'][level.procedure.id]
        following, following_date = next_level_of(policy, level.id,
            min(l['maturity_date'] for l in lines),
            details['parties'][party.id]['segment'])
        message = EngineMessage(
            party_id=party.id, level_id=level.id, channel='email',
            line_ids=line_ids, amount=sum(l['amount'] for l in lines),
            date=date, key='preview',
            next_level_id=following.id if following else None,
            next_level_date=following_date)
        rendered = Renderer.render(company, [message], details, context,
            template=self.record)
        recipient, subject, body, _ = rendered['preview']
        self.result.recipient = recipient
        self.result.subject = subject
        self.result.body = body
        return 'result'

    def default_result(self, fields):
        return {
            'recipient': self.result.recipient,
            'subject': self.result.subject,
            'body': self.result.body,
            }


class Message(ModelSQL, ModelView):
    "Dunning Message"
    __name__ = 'account.dunning.message'
    _states = {'readonly': True}
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    channel = fields.Selection('get_channels', "Channel", readonly=True)
    level = fields.Many2One(
        'account.dunning.level', "Level", readonly=True, ondelete='RESTRICT')
    tone = fields.Selection(TONE_SELECTION, "Tone", readonly=True,
        help="Set by the customer's segment: which template of the level.")
    date = fields.Date("Date", required=True, readonly=True,
        help="The date of the run that decided the message.")
    dunnings = fields.Many2Many(
        'account.dunning.message-account.dunning', 'message', 'dunning',
        "Dunnings", readonly=True)
    recipient = fields.Char("Recipient", readonly=True)
    subject = fields.Char("Subject", readonly=True)
    body = fields.Text("Body", readonly=True)
    body_html = fields.Text("HTML Body", readonly=True)
    amount = fields.Numeric("Amount", digits=(16, 2), readonly=True)
    key = fields.Char("Idempotency Key", required=True, readonly=True,
        help="Party, channel, level and date: one message each.")
    state = fields.Selection([
            ('queued', "Queued"),
            ('deferred', "Deferred"),
            ('sent', "Sent"),
            ('failed', "Failed"),
            ('merged', "Merged"),
            ], "State", required=True, readonly=True, sort=False,
        help="Deferred: waits for the customer's allowed hours or the "
        "frequency caps; merged: replaced by a later message that took its "
        "lines.")
    merged_into = fields.Many2One(
        'account.dunning.message', "Merged into", readonly=True,
        states={'invisible': Eval('state') != 'merged'})
    attempts = fields.Integer("Attempts", readonly=True)
    last_error = fields.Text("Last Error", readonly=True)
    next_attempt = fields.DateTime("Next Attempt", readonly=True)
    planned_at = fields.DateTime("Planned at", readonly=True,
        help="When the run meant the message to reach the customer: the "
        "frequency caps count from it.")
    sent_at = fields.DateTime("Sent at", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [
            ('key_unique', Unique(t, t.key),
                'dunning_advanced.msg_message_key_unique'),
            ]
        cls._sql_indexes.add(Index(
                t, (t.state, Index.Equality(cardinality='low')),
                where=t.state.in_(['queued', 'deferred'])))
        cls._order = [('date', 'DESC'), ('id', 'DESC')]
        cls._buttons.update({
                'retry': {
                    'invisible': Eval('state') == 'sent',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def get_channels(cls):
        return [('email', "Email"), ('letter', "Letter")]

    @classmethod
    def default_state(cls):
        return 'queued'

    @classmethod
    def default_attempts(cls):
        return 0

    @classmethod
    def default_tone(cls):
        return NEUTRAL

    @classmethod
    def check_modification(cls, mode, messages, values=None, external=False):
        super().check_modification(
            mode, messages, values=values, external=external)
        if mode == 'delete':
            raise ValidationError(gettext(
                    'dunning_advanced.msg_message_delete'))

    @classmethod
    @ModelView.button
    def retry(cls, messages):
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        cls.write(messages, {
                'state': 'queued',
                'next_attempt': None,
                })
        Audit.record([
                Audit.entry('message_retried', party=m.party,
                    message=m, level=m.level) for m in messages])
        cls.enqueue(messages)

    @classmethod
    def enqueue(cls, messages):
        """Send each message in a queue task of its own.

        A trytond-worker takes the tasks where one runs; elsewhere they run
        right after the transaction that queued them commits. Either way a
        provider is only called once the message is safely stored, and each
        delivery commits on its own.
        """
        for message in messages:
            cls.__queue__.send([message])

    @classmethod
    def send_pending(cls):
        "Queue what is due; the cron calls it so back-off retries happen"
        now = dt.datetime.now()
        cls.enqueue(cls.search(cls.due_domain(now), order=[('id', 'ASC')]))

    @classmethod
    def due_domain(cls, now):
        "The messages to send at now: queued, or deferred until before now"
        return [
            ('state', 'in', ['queued', 'deferred']),
            ['OR',
                ('next_attempt', '=', None),
                ('next_attempt', '<=', now),
                ],
            ]

    @classmethod
    def send(cls, messages):
        """Deliver the queued messages.

        The rows are locked before any provider is called, so two workers
        never deliver the same message and a transaction restarted by
        Tryton to take the locks has sent nothing yet. A provider failure
        leaves the message queued with its error and a later attempt time.
        """
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        cls.lock(messages)
        messages = cls.browse(messages)
        cls.render([m for m in messages if m.state in SENDABLE])
        now = dt.datetime.now()
        entries = []
        for message in messages:
            if message.state not in SENDABLE or (
                    message.next_attempt and message.next_attempt > now):
                continue
            # Its time has come: from here on it waits only for retries.
            message.state = 'queued'
            sender = getattr(message, '_send_%s' % message.channel)
            try:
                sender()
            except Exception as exception:
                logger.info("dunning message %s failed", message.id,
                    exc_info=True)
                message._failed(exception, now)
                kind = 'message_failed'
            else:
                message.state = 'sent'
                message.sent_at = now
                message.attempts = (message.attempts or 0) + 1
                message.last_error = None
                kind = 'message_sent'
            message.save()
            entries.append(Audit.entry(kind, party=message.party,
                    level=message.level, message=message,
                    reason=message.last_error))
        Audit.record(entries)

    @classmethod
    def render(cls, messages):
        """Write the texts of the messages the run queued without them.

        The run only decides; writing each reminder is the senders' work,
        spread over the workers, and the text is kept from the first
        attempt on so that a retry sends the same words.
        """
        pool = Pool()
        Run = pool.get('account.dunning.run')
        Renderer = pool.get('account.dunning.renderer')
        todo = [m for m in messages if m.body is None]
        groups = defaultdict(list)
        for message in todo:
            groups[(message.company, message.date)].append(message)
        for (company, date), group in groups.items():
            with Transaction().set_context(company=company.id):
                context = Run.load_context(company, date)
                _, details = Run.load(company, date,
                    sorted({m.party.id for m in group}), context)
                segments = {party_id: info['segment']
                    for party_id, info in details['parties'].items()}
                rendered = Renderer.render(company,
                    [m.as_decision(context, segments) for m in group],
                    details, context)
            for message in group:
                _, message.subject, message.body, message.body_html = (
                    rendered[message.key])
        cls.save(todo)

    def as_decision(self, context, segments):
        """The engine's message this record was queued from, the next level
        told in the cadence of the party's segment"""
        lines = [d.line for d in self.dunnings]
        # The message lists every overdue line of the party: the next level
        # is the one the lines of its level reach next.
        at_level = [d.line for d in self.dunnings
            if d.level == self.level] or lines
        policy = context['policies'][self.level.procedure.id]
        next_level, next_date = next_level_of(policy, self.level.id,
            min(l.maturity_date for l in at_level),
            segments.get(self.party.id))
        return EngineMessage(
            party_id=self.party.id, level_id=self.level.id,
            channel=self.channel,
            line_ids=tuple(sorted(l.id for l in lines)),
            amount=self.amount, date=self.date, key=self.key,
            next_level_id=next_level.id if next_level else None,
            next_level_date=next_date, tone=self.tone or NEUTRAL)

    def _failed(self, exception, now):
        self.attempts = (self.attempts or 0) + 1
        self.last_error = f'{exception.__class__.__name__}: {exception}'
        if self.attempts >= MAX_ATTEMPTS:
            self.state = 'failed'
            self.next_attempt = None
        else:
            delay = RETRY_DELAYS[min(self.attempts, len(RETRY_DELAYS)) - 1]
            self.next_attempt = now + dt.timedelta(minutes=delay)

    def _send_letter(self):
        "Letters are printed from the dunning queue; nothing to transmit"

    def _send_email(self):
        if not self.recipient:
            raise ValueError(gettext(
                    'dunning_advanced.msg_message_no_recipient',
                    party=self.party.rec_name))
        msg = self.as_email()
        try:
            send_message(msg, strict=True)
        except smtplib.SMTPRecipientsRefused as exception:
            raise ValueError(str(exception.recipients)) from exception

    def as_email(self):
        msg = EmailMessage()
        from_ = config.get('email', 'from')
        msg['From'] = from_
        msg['To'] = formataddr((self.party.rec_name, self.recipient))
        msg['Subject'] = self.subject
        msg['Date'] = formatdate(localtime=False, usegmt=True)
        msg['Message-ID'] = self.message_id
        msg['Auto-Submitted'] = 'auto-generated'
        msg['X-Dunning-Key'] = self.key
        if unsubscribe := self.opt_out_url():
            # RFC 8058: mail clients offer a one-click "unsubscribe"
            msg['List-Unsubscribe'] = f'<{unsubscribe}>'
            msg['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click'
        msg.set_content(self.body)
        if self.body_html:
            msg.add_alternative(self.body_html, subtype='html')
        return msg

    def opt_out_url(self):
        pool = Pool()
        Configuration = pool.get('account.configuration')
        return opt_out_url(Configuration(1), self.party.id, self.channel)

    @property
    def message_id(self):
        "Stable across retries so a receiver can drop a duplicate"
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:32]
        return f'<dunning-{digest}@{config.get("email", "from_domain", default="dunning.tryton")}>'


class MessageDunning(ModelSQL):
    "Dunning Message - Dunning"
    __name__ = 'account.dunning.message-account.dunning'
    message = fields.Many2One(
        'account.dunning.message', "Message", required=True,
        ondelete='CASCADE')
    dunning = fields.Many2One(
        'account.dunning', "Dunning", required=True, ondelete='CASCADE')


class Renderer(Model):
    "Dunning Message Renderer"
    __name__ = 'account.dunning.renderer'

    @classmethod
    def render(cls, company, messages, details, context, template=None):
        """Return {key: (recipient, subject, body, html)} for the messages,
        written with template instead of their level's when given.

        Texts are read once per template and language, not per message.
        """
        pool = Pool()
        Lang = pool.get('ir.lang')
        Level = pool.get('account.dunning.level')
        Configuration = pool.get('account.configuration')
        parties = details['parties']
        offers = cls.discount_offers(messages, details)
        lang_ids = {p['lang'] for p in parties.values() if p['lang']}
        codes = {l.id: l.code for l in Lang.browse(list(lang_ids))}
        default_code = Transaction().context.get('language') or 'en'
        rendered = {}
        by_code = defaultdict(list)
        for message in messages:
            party = parties[message.party_id]
            by_code[codes.get(party['lang'], default_code)].append(message)
        for code, code_messages in by_code.items():
            with Transaction().set_context(language=code):
                lang = Lang.get(code)
                level_ids = {m.level_id for m in code_messages} | {
                    m.next_level_id for m in code_messages if m.next_level_id}
                levels = {l.id: l for l in Level.browse(list(level_ids))}
                # Read here: the configuration's texts are translated.
                texts = _Texts(company, Configuration(1), lang)
                # Read in the language: the texts are translated.
                language_template = template and template.__class__(
                    template.id)
                for message in code_messages:
                    rendered[message.key] = cls.render_one(
                        message, details, levels, texts, offers,
                        language_template)
        return rendered

    @classmethod
    def discount_offers(cls, messages, details):
        "{invoice id: (discount, amount to pay, deadline)} still open on date"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        lines = details['lines']
        by_date = defaultdict(set)
        for message in messages:
            by_date[message.date].update(
                lines[l]['invoice'] for l in message.line_ids
                if lines[l]['invoice'])
        offers = {}
        for date, invoice_ids in by_date.items():
            offers.update(Invoice.early_discount_offers(
                    Invoice.browse(sorted(invoice_ids)), date))
        return offers

    @classmethod
    def render_one(cls, message, details, levels, texts, offers,
            template=None):
        "The lines that reached the level among all the party's open items"
        party = details['parties'][message.party_id]
        level = levels[message.level_id]
        reached = [details['lines'][l] for l in message.line_ids]
        items = [l for l in details['per_party'][message.party_id]
            if l['amount'] > 0]
        credit = details['credits'].get(message.party_id, Decimal(0))
        total = sum((l['amount'] for l in items), Decimal(0))
        consequence = ''
        if message.next_level_id:
            next_level = levels[message.next_level_id]
            if next_level.consequence:
                consequence = gettext(
                    'dunning_advanced.msg_consequence_on',
                    date=texts.date(message.next_level_date),
                    consequence=next_level.consequence)
        values = {
            'customer': party['name'],
            'contact': texts.contact,
            'company': texts.company_name,
            'date': texts.date(message.date),
            'total_due': texts.money(total),
            'balance': texts.money(total - credit),
            'days_late': str(max(0, max(
                        (message.date - l['maturity_date']).days
                        for l in reached))),
            'discount_offer': texts.discount_offer(reached, offers),
            'consequence': consequence,
            'payment_instructions': texts.payment_instructions,
            'portal_link': texts.portal_link,
            'opt_out_link': texts.opt_out_link(message.party_id),
            'privacy_notice': texts.privacy_notice,
            'accountant_contact': texts.contact,
            }
        text_table, html_table = texts.tables(
            message.party_id, items, message.date)
        text_values = dict(values,
            invoices=text_table, credits=texts.credits_text(credit))
        html_values = {k: html.escape(v) for k, v in values.items()}
        html_values.update(
            invoices=html_table, credits=texts.credits_html(credit))
        template = template or level.template_for(message.tone)
        recipient = party['recipients'].get(message.channel)
        if template is None:
            return recipient, level.rec_name, '', None
        subject = Template.substitute(template.subject, values)
        body = Template.substitute(template.body, text_values)
        html_body = Template.substitute(
            html.escape(template.body), html_values)
        html_body = texts.html_page(html_body)
        return recipient, subject, body, html_body


class _Texts:
    "Formatting in one language, shared by the messages of a batch"

    def __init__(self, company, config, lang):
        self.lang = lang
        self.currency = company.currency
        self.company_name = company.rec_name
        self.contact = config.dunning_contact or company.rec_name
        self.payment_instructions = (config.dunning_payment_instructions
            or gettext('dunning_advanced.msg_default_payment_instructions'))
        self.config = config
        self.portal_link = (config.dunning_portal_url or '').rstrip('/')
        self.privacy_notice = (config.dunning_privacy_notice
            or gettext('dunning_advanced.msg_default_privacy_notice'))
        self._money = MoneyFormat(lang, company.currency)
        self._dates = {}
        self._rows = {}
        self._tables = {}
        self.headers = [gettext(f'dunning_advanced.msg_column_{c}') for c in (
                'invoice', 'date', 'due_date', 'amount', 'days_late')]

    def money(self, amount):
        return self._money(amount)

    def date(self, value):
        if value not in self._dates:
            self._dates[value] = self.lang.strftime(value) if value else ''
        return self._dates[value]

    def discount_offer(self, lines, offers):
        "One sentence per invoice whose early-payment discount still holds"
        sentences = []
        for line in lines:
            if line['invoice'] not in offers:
                continue
            discount, amount, deadline = offers[line['invoice']]
            sentences.append(gettext('dunning_advanced.msg_discount_offer',
                    amount=self.money(amount),
                    total=self.money(amount + discount),
                    invoice=line['number'] or str(line['id']),
                    deadline=self.date(deadline),
                    discount=self.money(discount)))
        return '\n'.join(sentences)

    def opt_out_link(self, party_id):
        return opt_out_url(self.config, party_id, 'email') or self.contact

    def _row(self, line, date):
        "A line is listed in every message of its party: format it once"
        key = line['id'], line['amount']
        if key not in self._rows:
            self._rows[key] = [line['number'] or str(line['id']),
                self.date(line['invoice_date']),
                self.date(line['maturity_date']),
                self.money(line['amount']),
                self.days_late(date, line['maturity_date'])]
        return self._rows[key]

    def _table(self, lines, date):
        return [self._row(line, date) for line in lines]

    @staticmethod
    def days_late(date, maturity_date):
        days = (date - maturity_date).days
        return str(days) if days > 0 else ''

    def tables(self, party_id, lines, date):
        "The open items of a party are the same in each of its messages"
        if party_id not in self._tables:
            self._tables[party_id] = (
                self.lines_text(lines, date), self.lines_html(lines, date))
        return self._tables[party_id]

    def lines_text(self, lines, date):
        rows = [self.headers] + self._table(lines, date)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths))
            .rstrip() for r in rows)

    def lines_html(self, lines, date):
        head = ''.join(f'<th style="text-align:left;padding:4px 8px">'
            f'{html.escape(h)}</th>' for h in self.headers)
        body = ''.join('<tr>' + ''.join(
                    f'<td style="padding:4px 8px">{html.escape(c)}</td>'
                    for c in row) + '</tr>'
            for row in self._table(lines, date))
        return (f'<table style="border-collapse:collapse">'
            f'<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')

    def credits_text(self, credit):
        if not credit:
            return ''
        return gettext('dunning_advanced.msg_credits',
            amount=self.money(credit))

    def credits_html(self, credit):
        return html.escape(self.credits_text(credit))

    def html_page(self, body):
        paragraphs = ''.join(
            f'<p>{p.strip().replace(chr(10), "<br>")}</p>'
            for p in body.split('\n\n') if p.strip())
        return ('<!DOCTYPE html><html><body style="font-family:sans-serif;'
            f'color:#222;max-width:640px">{paragraphs}</body></html>')


class MoneyFormat:
    """Format amounts exactly as ``ir.lang.currency`` does, fast.

    Reading the language's settings costs more than the arithmetic, and a
    run formats hundreds of thousands of amounts: the pattern is learnt once
    from Tryton's own output for a sample amount and reused. Languages that
    do not group digits by three, and negative amounts, take Tryton's path.
    """
    def __init__(self, lang, currency):
        self.lang = lang
        self.currency = currency
        self.digits = currency.digits
        sample = Decimal('1234567') + (
            Decimal('0.' + '8' * self.digits) if self.digits else 0)
        text = lang.currency(sample, currency, grouping=True)
        match = re.fullmatch(
            r'(.*?)1(\D*)234(\D*)567(\D*)(\d*)(.*)', text, re.S)
        self.pattern = None
        fraction = f'{sample:f}'.partition('.')[2]
        if (match and match.group(2) == match.group(3)
                and match.group(5) == fraction):
            self.pattern = match.groups()

    def __call__(self, amount):
        if self.pattern is None or amount < 0:
            return self.lang.currency(amount, self.currency, grouping=True)
        prefix, thousands, _, point, _, suffix = self.pattern
        text = f'{amount:,.{self.digits}f}'
        whole, _, fraction = text.partition('.')
        text = whole.replace(',', thousands)
        if self.digits:
            text += point + fraction
        return prefix + text + suffix


def opt_out_url(config, party_id, channel):
    "The link that stops a channel, under the portal's address"
    if config.dunning_portal_url:
        token = sign_token(config.get_dunning_secret(), party_id, channel)
        return (f"{config.dunning_portal_url.rstrip('/')}"
            f"/dunning/opt-out/{token}")


def sign_token(secret, party_id, channel, expires=None):
    "A token that names the party and channel, signed so nobody forges it"
    expires = expires or (dt.date.today() + dt.timedelta(days=90))
    payload = f'{party_id}.{channel}.{expires.isoformat()}'
    signature = hmac.new(
        secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]
    return f'{payload}.{signature}'


def read_token(secret, token, today):
    "Return (party_id, channel) of a valid token, else raise ValueError"
    try:
        party_id, channel, expires, signature = token.split('.')
        expires = dt.date.fromisoformat(expires)
        party_id = int(party_id)
    except ValueError:
        raise ValueError('malformed token')
    payload = f'{party_id}.{channel}.{expires.isoformat()}'
    expected = hmac.new(
        secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(expected, signature):
        raise ValueError('bad signature')
    if expires < today:
        raise ValueError('expired token')
    return party_id, channel
