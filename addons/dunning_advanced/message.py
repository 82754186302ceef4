"""Reminder templates, the outbox and its channels (email lives here)."""
import datetime as dt
import hashlib
import html
import logging
import re
import smtplib
from collections import defaultdict
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sql import Literal

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

from . import signing
from .bulk import chunks, in_
from .engine import NEUTRAL
from .engine import Message as EngineMessage
from .engine import next_level as next_level_of
from .segment import TONE_SELECTION

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r'\$\{([^}]*)\}')
PLACEHOLDERS = (
    'customer', 'contact', 'company', 'date', 'invoices', 'credits',
    'total_due', 'balance', 'days_late', 'consequence',
    'totals', 'to_pay', 'account_status',
    'payment_instructions', 'discount_offer', 'portal_link', 'opt_out_link',
    'privacy_notice', 'accountant_contact',
    )
URL = re.compile(r'https?://[^\s<>"]+')
# Where account_dunning_fee posts a fee: its receivable line has no due date.
FEE_ORIGIN = 'account.dunning.fee.dunning_level,'
REMINDER_PAGE = Environment(
    loader=FileSystemLoader(Path(__file__).parent / 'templates'),
    autoescape=select_autoescape(['html'])).get_template('reminder.html')
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
        party_ids = sorted({m.party_id for m in messages})
        facts = cls.load_facts(company, party_ids, details)
        offers = cls.discount_offers(messages, details)
        lang_ids = {p['lang'] for p in parties.values() if p['lang']}
        codes = {l.id: l.code for l in Lang.browse(list(lang_ids))}
        default_code = Transaction().context.get('language') or 'en'
        regional = cls.regional_codes(
            {codes.get(parties[p]['lang'], default_code) for p in party_ids})
        policies = context['policies']
        level_ids = sorted({level.id for policy in policies.values()
                for level in policy.levels} | {m.level_id for m in messages})
        rendered = {}
        by_code = defaultdict(list)
        for message in messages:
            code = codes.get(parties[message.party_id]['lang'], default_code)
            country = facts[message.party_id]['country']
            by_code[code, regional.get((code, country), code)].append(
                message)
        for (code, format_code), code_messages in by_code.items():
            with Transaction().set_context(language=code):
                # The words of the language, the dates and amounts as the
                # customer's country writes them.
                lang = Lang.get(format_code)
                # Read in the language: the templates are translated.
                levels = {l.id: l for l in Level.browse(level_ids)}
                # Read here: the configuration's texts are translated.
                texts = _Texts(company, Configuration(1), lang, code,
                    facts, policies)
                # Read in the language: the texts are translated.
                language_template = template and template.__class__(
                    template.id)
                for message in code_messages:
                    rendered[message.key] = cls.render_one(
                        message, details, levels, texts, offers,
                        language_template)
        return rendered

    @classmethod
    def regional_codes(cls, codes):
        """{(language code, country code): code of the language as written
        in that country} for the regional languages of codes: a customer in
        the United Kingdom whose language is English reads en_GB dates"""
        pool = Pool()
        Lang = pool.get('ir.lang')
        regional = {}
        for lang in Lang.search([]):
            language, _, country = lang.code.partition('_')
            if country and language in codes:
                regional[language, country] = lang.code
        return regional

    @classmethod
    def load_facts(cls, company, party_ids, details):
        """{party id: facts} the reminders state: its credits line by line,
        the late-payment fees still unpaid, its open collection case and
        its country"""
        pool = Pool()
        Run = pool.get('account.dunning.run')
        Collection = pool.get('account.dunning.collection')
        move = pool.get('account.move').__table__()
        invoice = pool.get('account.invoice').__table__()
        invoice_payment = pool.get(
            'account.invoice-account.move.line').__table__()
        address = pool.get('party.address').__table__()
        country = pool.get('country.country').__table__()
        cursor = Transaction().connection.cursor()
        facts = {p: {'credits': [], 'fees': Decimal(0), 'case': None,
                'country': None} for p in party_ids}
        line, query, where = Run._receivable_lines(company)
        query = (query
            .join(move, condition=move.id == line.move)
            .join(invoice, 'LEFT', condition=invoice.move == line.move)
            .join(invoice_payment, 'LEFT',
                condition=invoice_payment.line == line.id))
        rounding = company.currency.round
        for sub in chunks(party_ids):
            cursor.execute(*query.select(
                    line.party, line.debit, line.credit, line.maturity_date,
                    move.date, move.number, move.origin, invoice.number,
                    invoice_payment.invoice,
                    where=where & in_(line.party, sub),
                    order_by=[line.party, move.date, line.id]))
            for (party_id, debit, credit, maturity, date, move_number,
                    origin, number, paid_invoice) in cursor:
                amount = Decimal(debit) - Decimal(credit)
                if amount < 0 and not paid_invoice:
                    facts[party_id]['credits'].append(
                        (number or move_number or '', date, -amount))
                elif (amount > 0 and maturity is None
                        and str(origin or '').startswith(FEE_ORIGIN)):
                    facts[party_id]['fees'] += amount
        for party_id, info in facts.items():
            # What the run counts as credit also has the part of a payment
            # beyond its invoice: it is listed as such.
            listed = sum((c for _, _, c in info['credits']), Decimal(0))
            rest = rounding(
                details['credits'].get(party_id, Decimal(0)) - listed)
            if rest > 0:
                info['credits'].append((None, None, rest))
        for case in Collection.search([
                    ('company', '=', company.id),
                    ('party', 'in', party_ids),
                    ('state', '=', 'open'),
                    ], order=[('date', 'ASC'), ('id', 'ASC')]):
            facts[case.party.id]['case'] = (case.date, case.agency)
        for sub in chunks(party_ids):
            cursor.execute(*address.join(country,
                    condition=country.id == address.country).select(
                    address.party, country.code,
                    where=in_(address.party, sub)
                    & (address.active == Literal(True)),
                    order_by=[address.party, address.sequence.desc,
                        address.id.desc]))
            # The first address is read last: it is kept.
            for party_id, code in cursor:
                facts[party_id]['country'] = code
        return facts

    @classmethod
    def discount_offers(cls, messages, details):
        """{invoice id: (discount, amount to pay, deadline)} still open on
        date, among all the open invoices of the parties"""
        pool = Pool()
        Invoice = pool.get('account.invoice')
        per_party = details['per_party']
        by_date = defaultdict(set)
        for message in messages:
            by_date[message.date].update(
                l['invoice'] for l in per_party.get(message.party_id, ())
                if l['invoice'])
        offers = {}
        for date, invoice_ids in by_date.items():
            offers.update(Invoice.early_discount_offers(
                    Invoice.browse(sorted(invoice_ids)), date))
        return offers

    @classmethod
    def render_one(cls, message, details, levels, texts, offers,
            template=None):
        """The party's open items, split into what is overdue, what is not
        due yet and its credits, with only the facts that hold"""
        party = details['parties'][message.party_id]
        level = levels[message.level_id]
        statement = texts.statement(message.party_id, details, message.date)
        values = {
            'customer': party['name'],
            'contact': texts.contact,
            'company': texts.company_name,
            'date': texts.date(message.date),
            'total_due': texts.money(statement.due_total),
            'balance': texts.money(statement.to_pay),
            'to_pay': texts.money(statement.to_pay),
            'days_late': str(statement.oldest_days_late),
            'discount_offer': texts.discount_offer(statement.items, offers),
            'account_status': texts.account_status(message.party_id, party),
            'consequence': texts.consequence(
                message, level, statement, party, levels),
            'payment_instructions': texts.payment_instructions,
            'portal_link': texts.portal_link,
            'opt_out_link': texts.opt_out_link(message.party_id),
            'privacy_notice': texts.privacy_notice,
            'accountant_contact': texts.contact,
            'credits': texts.credits_text(statement.credit_total),
            'invoices': texts.rows_text(statement),
            'totals': texts.totals_text(statement),
            }
        template = template or level.template_for(message.tone)
        recipient = party['recipients'].get(message.channel)
        if template is None:
            return recipient, level.rec_name, '', None
        subject = Template.substitute(template.subject or '', values)
        body = tidy(Template.substitute(template.body, values))
        html_body = texts.html_page(subject, template.body, values,
            statement)
        return recipient, subject, body, html_body


class Statement:
    "A party's open items on a date, as every reminder tells them"

    def __init__(self, lines, credits, fees, date, currency):
        items = sorted(lines, key=lambda l: (l['maturity_date'], l['id']))
        self.items = items
        self.overdue = [l for l in items if l['maturity_date'] < date]
        self.due_today = [l for l in items if l['maturity_date'] == date]
        self.not_yet_due = [l for l in items if l['maturity_date'] > date]
        self.date = date
        self.credits = credits
        self.fees = fees

        def total(amounts):
            return currency.round(sum(amounts, Decimal(0)))
        self.overdue_total = total(l['amount'] for l in self.overdue)
        self.due_today_total = total(l['amount'] for l in self.due_today)
        self.not_yet_due_total = total(l['amount'] for l in self.not_yet_due)
        self.credit_total = total(c for _, _, c in credits)
        self.due_total = self.overdue_total + self.due_today_total
        self.to_pay = max(Decimal(0),
            self.due_total + self.fees - self.credit_total)
        self.oldest_days_late = max(
            ((date - l['maturity_date']).days for l in self.overdue),
            default=0)
        # A line a plan holds or the customer disputes does not escalate.
        self.oldest_maturity = min((l['maturity_date'] for l in items
                if not (l['paused'] or l['disputed'])), default=None)


class _Texts:
    "Formatting in one language, shared by the messages of a batch"

    def __init__(self, company, config, lang, code, facts, policies):
        self.lang = lang
        self.code = code
        self.facts = facts
        self.policies = policies
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
        self._statements = {}
        self.headers = {
            'late': [gettext(f'dunning_advanced.msg_column_{c}') for c in (
                    'invoice', 'date', 'due_date', 'amount', 'days_late')],
            'on_time': [gettext(f'dunning_advanced.msg_column_{c}')
                for c in ('invoice', 'date', 'due_date', 'amount')],
            'credits': [gettext(f'dunning_advanced.msg_column_{c}')
                for c in ('reference', 'date', 'credit')],
            }
        self.titles = {name: gettext(f'dunning_advanced.msg_section_{name}')
            for name in ('overdue', 'due_today', 'not_yet_due', 'credits')}
        self.pay_label = gettext('dunning_advanced.msg_pay_button')

    def money(self, amount):
        return self._money(amount)

    def date(self, value):
        if value not in self._dates:
            self._dates[value] = self.lang.strftime(value) if value else ''
        return self._dates[value]

    def statement(self, party_id, details, date):
        "The open items of a party are the same in each of its messages"
        key = party_id, date
        if key not in self._statements:
            facts = self.facts[party_id]
            self._statements[key] = Statement(
                [l for l in details['per_party'].get(party_id, ())
                    if l['amount'] > 0],
                facts['credits'], facts['fees'], date, self.currency)
        return self._statements[key]

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

    def account_status(self, party_id, party):
        "What holds on the account today: fees added, orders held, hand-over"
        facts = self.facts[party_id]
        sentences = []
        if facts['fees']:
            sentences.append(gettext('dunning_advanced.msg_status_fee',
                    amount=self.money(facts['fees'])))
        if party['blocked']:
            sentences.append(gettext('dunning_advanced.msg_status_blocked'))
        if facts['case']:
            date, agency = facts['case']
            if agency:
                sentences.append(gettext(
                        'dunning_advanced.msg_status_collection_agency',
                        agency=agency, date=self.date(date)))
            else:
                sentences.append(gettext(
                        'dunning_advanced.msg_status_collection',
                        date=self.date(date)))
        return '\n'.join(sentences)

    def consequence(self, message, level, statement, party, levels):
        """What the next level of the policy does if the overdue amount is
        still unpaid, and from when: the day the oldest open line reaches
        it, always after the date of the message"""
        policy = self.policies.get(level.procedure.id)
        if (policy is None or statement.oldest_maturity is None
                or not statement.due_total):
            return ''
        following, when = next_level_of(policy, message.level_id,
            statement.oldest_maturity, party['segment'])
        while following and when <= message.date:
            following, when = next_level_of(policy, following.id,
                statement.oldest_maturity, party['segment'])
        if following is None:
            return ''
        facts = self.facts[message.party_id]
        outcomes = []
        if following.fee:
            outcomes.append(gettext('dunning_advanced.msg_next_fee',
                    amount=self.money(self.fee_amount(
                            levels[following.id].fee, statement))))
        if following.interest_rate:
            outcomes.append(gettext('dunning_advanced.msg_next_interest',
                    rate=self.lang.format_number(
                        following.interest_rate * 100, digits=2)))
        if following.block_ordering and not party['blocked']:
            outcomes.append(gettext('dunning_advanced.msg_next_block'))
        if following.collection and not facts['case']:
            outcomes.append(gettext('dunning_advanced.msg_next_collection'))
        return '\n'.join(gettext('dunning_advanced.msg_consequence_on',
                amount=self.money(statement.due_total),
                date=self.date(when), consequence=outcome)
            for outcome in outcomes)

    def fee_amount(self, fee, statement):
        "The fee a level charges, as account_dunning_fee computes it"
        if fee.compute_method == 'percentage':
            return self.currency.round(
                statement.due_total * fee.percentage)
        return self.currency.round(fee.product.list_price_used or 0)

    def opt_out_link(self, party_id):
        return opt_out_url(self.config, party_id, 'email') or self.contact

    def _row(self, line, date):
        "A line is listed in every message of its party: format it once"
        key = line['id'], line['amount'], date
        if key not in self._rows:
            days = (date - line['maturity_date']).days
            self._rows[key] = [line['number'] or str(line['id']),
                self.date(line['invoice_date']),
                self.date(line['maturity_date']),
                self.money(line['amount'])] + (
                    [str(days)] if days > 0 else [])
        return self._rows[key]

    def sections(self, statement, date):
        "(title, headers, rows) of each part of the statement not empty"
        sections = []
        for name, lines, headers in (
                ('overdue', statement.overdue, 'late'),
                ('due_today', statement.due_today, 'on_time'),
                ('not_yet_due', statement.not_yet_due, 'on_time')):
            if lines:
                sections.append((self.titles[name], self.headers[headers],
                        [self._row(l, date) for l in lines]))
        if statement.credits:
            sections.append((self.titles['credits'], self.headers['credits'],
                    [[reference if reference is not None else gettext(
                                'dunning_advanced.msg_credit_overpaid'),
                            self.date(date_), self.money(amount)]
                        for reference, date_, amount in statement.credits]))
        return sections

    def rows_text(self, statement):
        date = statement.date
        out = []
        for title, headers, rows in self.sections(statement, date):
            rows = [headers] + rows
            widths = [max(len(r[i]) for r in rows if i < len(r))
                for i in range(len(headers))]
            out.append('\n'.join([title] + [
                        '  '.join(c.ljust(w) for c, w in zip(r, widths))
                        .rstrip() for r in rows]))
        return '\n\n'.join(out)

    def totals(self, statement):
        "(label, amount, strong) of the totals, the amount to pay now last"
        totals = []
        if statement.overdue:
            totals.append((gettext('dunning_advanced.msg_total_overdue'),
                    statement.overdue_total, False))
        if statement.due_today:
            totals.append((gettext('dunning_advanced.msg_total_due_today'),
                    statement.due_today_total, False))
        if statement.fees:
            totals.append((gettext('dunning_advanced.msg_total_fees'),
                    statement.fees, False))
        if statement.credits:
            totals.append((gettext('dunning_advanced.msg_total_credits'),
                    -statement.credit_total, False))
        if totals or statement.to_pay:
            totals.append((gettext('dunning_advanced.msg_total_to_pay'),
                    statement.to_pay, True))
        if statement.not_yet_due:
            totals.append((gettext('dunning_advanced.msg_total_not_yet_due'),
                    statement.not_yet_due_total, False))
        return [(label, self.money(amount), strong)
            for label, amount, strong in totals]

    def totals_text(self, statement):
        totals = [(gettext('dunning_advanced.msg_total_label', label=label),
                amount) for label, amount, _ in self.totals(statement)]
        # Nothing left open once all is paid before the reminder leaves.
        width = max((len(label) for label, _ in totals), default=0)
        return '\n'.join(f'{label:<{width}} {amount}'
            for label, amount in totals)

    def credits_text(self, credit):
        if not credit:
            return ''
        return gettext('dunning_advanced.msg_credits',
            amount=self.money(credit))

    def html_page(self, subject, body, values, statement):
        """The reminder as an HTML page: the template's paragraphs, the
        statement as tables, every link an anchor and a button to pay"""
        titles = {self.titles[n] for n in ('overdue', 'due_today',
                'not_yet_due')}

        def narrow(cells, title):
            "Without the invoice date, the table fits a phone's width"
            return cells[:1] + cells[2:] if title in titles else cells

        escaped = {k: html.escape(v) for k, v in values.items()}
        date = statement.date
        blocks = []
        footer = False
        for paragraph in re.split(r'\n[ \t]*\n', body.strip()):
            paragraph = paragraph.strip()
            if paragraph.startswith('--'):
                footer = True
                paragraph = paragraph[2:].strip()
            alone = PLACEHOLDER.fullmatch(paragraph)
            if alone and alone.group(1) == 'invoices':
                blocks.append({'kind': 'rows', 'sections': [
                            {'title': t, 'headers': narrow(h, t),
                                'rows': [narrow(r, t) for r in rows]}
                            for t, h, rows in self.sections(
                                statement, date)]})
                continue
            if alone and alone.group(1) == 'totals':
                blocks.append({'kind': 'totals',
                        'totals': self.totals(statement)})
                continue
            text = tidy(Template.substitute(html.escape(paragraph), escaped))
            if not text:
                continue
            blocks.append({
                    'kind': 'footer' if footer else 'paragraph',
                    'html': Markup(linkify(text).replace('\n', '<br>\n')),
                    })
        return REMINDER_PAGE.render(lang=self.code, subject=subject,
            company=self.company_name, blocks=blocks,
            pay_url=values['portal_link'] if URL.fullmatch(
                values['portal_link'] or '') else None,
            pay_label=self.pay_label)


def tidy(text):
    "text without the blank lines the empty facts left"
    lines = [l.rstrip() for l in text.split('\n')]
    return re.sub(r'\n{3,}', '\n\n', '\n'.join(lines)).strip()


def linkify(escaped):
    "The http(s) addresses of an escaped text as anchors"
    return URL.sub(lambda m: f'<a href="{m.group(0)}" '
        'style="color:#1d4ed8;word-break:break-all">'
        f'{m.group(0)}</a>', escaped)


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
        token = sign_token(party_id, channel)
        return (f"{config.dunning_portal_url.rstrip('/')}"
            f"/dunning/opt-out/{token}")


def sign_token(party_id, channel, expires=None):
    "A token that names the party and channel, signed so nobody forges it"
    expires = expires or (dt.date.today() + dt.timedelta(days=90))
    # Unlike the other links, the payload is signed without a purpose in
    # front: the opt-out links already sent were signed so.
    payload = f'{party_id}.{channel}.{expires.isoformat()}'
    return f'{payload}.{signing.sign(payload)}'


def read_token(token, today):
    "Return (party_id, channel) of a valid token, else raise ValueError"
    try:
        party_id, channel, expires, signature = token.split('.')
        expires = dt.date.fromisoformat(expires)
        party_id = int(party_id)
    except ValueError:
        raise ValueError('malformed token')
    payload = f'{party_id}.{channel}.{expires.isoformat()}'
    if not signing.verify(payload, signature):
        raise ValueError('bad signature')
    if expires < today:
        raise ValueError('expired token')
    return party_id, channel
