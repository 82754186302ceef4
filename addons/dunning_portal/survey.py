"""Two questions after a payment and from a link in reminders: how easy it
was to pay (1 to 5) and what would have helped. One answer per customer per
reminder or payment; the link is signed, so no login is needed."""
import base64
import binascii
import datetime as dt
import re
from http import HTTPStatus

from sql import Literal
from sql.aggregate import Avg, Count, Min, Sum
from sql.conditionals import Case

from trytond.i18n import gettext
from trytond.model import Check, ModelSQL, ModelView, Unique, fields
from trytond.modules.dunning_advanced import signing
from trytond.modules.dunning_advanced.segment import SEGMENT_SELECTION
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction

from .portal import route
from .web_user import portal_base

LINK_PURPOSE = 'portal-survey'
MESSAGE, PAYMENT = 'm', 'p'
SURVEY_DAYS = 60
SCORES = range(1, 6)
COMMENT_MAX = 2000
SURVEY_PLACEHOLDERS = ('survey_link',)
OUR_PLACEHOLDERS = re.compile(
    r'\$\{(?:%s)\}' % '|'.join(SURVEY_PLACEHOLDERS))
# The line added to the shipped reminders, after their portal link
SURVEY_LINE = {
    'en': "Paid already? Tell us how easy it was: ${survey_link}",
    'fr': "Déjà payé ? Dites-nous si c'était simple : ${survey_link}",
    }
SOURCES = [
    ('reminder', "After a Reminder"),
    ('payment', "After a Payment"),
    ]


def _encode(reference):
    return base64.urlsafe_b64encode(reference.encode()).decode().rstrip('=')


def _decode(text):
    return base64.urlsafe_b64decode(
        text + '=' * (-len(text) % 4)).decode()


def _purposed(payload):
    # The purpose keeps an opt-out or login token from passing for ours.
    return f'{LINK_PURPOSE}.{payload}'


def sign_survey(kind, reference, expires):
    """The token of the survey about a reminder (kind MESSAGE, reference its
    outbox key) or a payment (kind PAYMENT, reference its id)"""
    payload = f'{kind}.{_encode(str(reference))}.{expires.isoformat()}'
    return f'{payload}.{signing.sign(_purposed(payload))}'


def read_survey(token, today):
    "Return (kind, reference) of a valid token, else raise ValueError"
    # hmac compares only ASCII text: anything else was never ours.
    if not token.isascii():
        raise ValueError('malformed')
    try:
        kind, reference, expires, signature = token.split('.')
        expires = dt.date.fromisoformat(expires)
        if kind not in {MESSAGE, PAYMENT}:
            raise ValueError
    except ValueError:
        raise ValueError('malformed')
    payload = f'{kind}.{reference}.{expires.isoformat()}'
    if not signing.verify(_purposed(payload), signature):
        raise ValueError('forged')
    if expires < today:
        raise ValueError('expired')
    try:
        return kind, _decode(reference)
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError('malformed')


def survey_token(record, today=None):
    "The survey token of an outbox message or a payment"
    pool = Pool()
    Message = pool.get('account.dunning.message')
    today = today or dt.date.today()
    if isinstance(record, Message):
        kind, reference = MESSAGE, record.key
    else:
        kind, reference = PAYMENT, record.id
    return sign_survey(kind, reference,
        today + dt.timedelta(days=SURVEY_DAYS))


def survey_url(record):
    """The link to the survey about an outbox message or a payment
    (account.payment), for a portal page such as the payment's
    confirmation: a path on the server that shows the page."""
    database = Transaction().database.name
    return f'/{database}/portal/survey/{survey_token(record)}'


class Answer(ModelSQL, ModelView):
    "Dunning Survey Answer"
    __name__ = 'account.dunning.survey.answer'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        ondelete='CASCADE',
        context={'company': Eval('company', -1)}, depends={'company'})
    date = fields.Date("Date", required=True, readonly=True)
    source = fields.Selection(SOURCES, "Source", required=True,
        readonly=True)
    message = fields.Many2One(
        'account.dunning.message', "Reminder", readonly=True,
        ondelete='CASCADE',
        help="The reminder whose link the customer followed.")
    payment = fields.Many2One(
        'account.payment', "Payment", readonly=True, ondelete='CASCADE',
        help="The card payment after which the customer answered.")
    score = fields.Integer("Ease of Payment", required=True, readonly=True,
        help="How easy was it to pay? From 1 (very hard) to 5 (very easy).")
    comment = fields.Text("What Would Have Helped", readonly=True)
    level = fields.Many2One(
        'account.dunning.level', "Level", readonly=True,
        ondelete='SET NULL',
        help="The reminder's level when the customer answered.")
    channel = fields.Selection('get_channels', "Channel", readonly=True,
        help="How the reminder reached the customer.")
    segment = fields.Selection([(None, "")] + SEGMENT_SELECTION,
        "Segment", readonly=True,
        help="The customer's segment when they answered.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [
            ('party_message_unique', Unique(t, t.party, t.message),
                'dunning_portal.msg_survey_answered'),
            ('party_payment_unique', Unique(t, t.party, t.payment),
                'dunning_portal.msg_survey_answered'),
            ('score_range', Check(t, (t.score >= 1) & (t.score <= 5)),
                'dunning_portal.msg_survey_score'),
            ]
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def get_channels(cls):
        pool = Pool()
        Message = pool.get('account.dunning.message')
        return [(None, "")] + Message.get_channels()

    @classmethod
    def subject(cls, token, today):
        """The customer, company and what the token asks about as answer
        values, else raise ValueError with why the link is not valid"""
        pool = Pool()
        Message = pool.get('account.dunning.message')
        Payment = pool.get('account.payment')
        kind, reference = read_survey(token, today)
        if kind == MESSAGE:
            messages = Message.search([('key', '=', reference)], limit=1)
            if not messages:
                raise ValueError('unknown')
            message, = messages
            return {
                'company': message.company, 'party': message.party,
                'source': 'reminder', 'message': message,
                'level': message.level, 'channel': message.channel,
                }
        payments = Payment.search([
                ('id', '=', int(reference) if reference.isdigit() else -1),
                ('kind', '=', 'receivable'),
                ], limit=1)
        if not payments:
            raise ValueError('unknown')
        payment, = payments
        return {
            'company': payment.company, 'party': payment.party,
            'source': 'payment', 'payment': payment,
            'level': cls.level_of_payment(payment), 'channel': None,
            }

    @classmethod
    def level_of_payment(cls, payment):
        "The dunning level the paid line had reached, if any"
        pool = Pool()
        Dunning = pool.get('account.dunning')
        if payment.line:
            dunnings = Dunning.search([('line', '=', payment.line.id)],
                limit=1)
            if dunnings:
                return dunnings[0].level

    @classmethod
    def answered(cls, subject):
        "The answer the customer already gave about subject, if any"
        domain = [('party', '=', subject['party'].id)]
        if subject['source'] == 'reminder':
            domain.append(('message', '=', subject['message'].id))
        else:
            domain.append(('payment', '=', subject['payment'].id))
        answers = cls.search(domain, limit=1)
        return answers[0] if answers else None

    @classmethod
    def answer(cls, subject, score, comment, date):
        "Store the answer with the segment the customer is in now"
        pool = Pool()
        Segment = pool.get('account.dunning.segment')
        segments = Segment.search([
                ('company', '=', subject['company'].id),
                ('party', '=', subject['party'].id),
                ], limit=1)
        values = {k: getattr(v, 'id', v) for k, v in subject.items()}
        values.update(score=score, comment=comment or None, date=date,
            segment=segments[0].segment if segments else None)
        answer, = cls.create([values])
        return answer


class Template(metaclass=PoolMeta):
    __name__ = 'account.dunning.template'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.body.help += "\nReminders by email, letter and portal also: " + (
            ", ".join('${%s}' % p for p in SURVEY_PLACEHOLDERS))

    @classmethod
    def __register__(cls, module):
        pool = Pool()
        Module = pool.get('ir.module')
        activating = module == 'dunning_portal' and not Module.search([
                ('name', '=', module),
                ('state', '=', 'activated'),
                ])
        super().__register__(module)
        if activating:
            cls.add_survey_line()

    @classmethod
    def add_survey_line(cls):
        """Put the survey link under the portal link of the reminders that
        dunning_advanced ships, in each language, once"""
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        Translation = pool.get('ir.translation')
        ids = [d.db_id for d in ModelData.search([
                    ('module', '=', 'dunning_advanced'),
                    ('model', '=', cls.__name__),
                    ]) if d.db_id]
        # The languages of the texts, loaded before trytond-admin marks
        # them translatable: English first, whose change the others follow
        codes = sorted({t.lang for t in Translation.search([
                        ('name', '=', f'{cls.__name__},body'),
                        ('type', '=', 'model'),
                        ('res_id', 'in', ids),
                        ])} | {'en'},
            key=lambda c: c != 'en')
        for code in codes:
            line = SURVEY_LINE.get(code[:2], SURVEY_LINE['en'])
            with Transaction().set_context(
                    language=code, fuzzy_translation=False):
                for template in cls.browse(ids):
                    if getattr(template, 'kind', 'email') != 'email':
                        continue
                    body = template.body or ''
                    if '${survey_link}' in body or '${portal_link}' not in (
                            body):
                        continue
                    lines = body.split('\n')
                    at = next(i for i, l in enumerate(lines)
                        if '${portal_link}' in l)
                    lines.insert(at + 1, line)
                    cls.write([template], {'body': '\n'.join(lines)})

    def check_placeholders(self):
        "Ours are known in email texts; the other modules check the rest"
        if getattr(self, 'kind', 'email') != 'email':
            return super().check_placeholders()
        subject, body = self.subject, self.body
        self.subject = OUR_PLACEHOLDERS.sub('', subject or '')
        self.body = OUR_PLACEHOLDERS.sub('', body or '')
        try:
            super().check_placeholders()
        finally:
            self.subject, self.body = subject, body


class Renderer(metaclass=PoolMeta):
    __name__ = 'account.dunning.renderer'

    @classmethod
    def render_one(cls, message, details, levels, texts, offers,
            template=None):
        """The survey link of the reminder in the email texts of its level
        (emails, letters and portal notices); a formal notice or a
        collections notice asks no opinion: the lines of the link go"""
        pool = Pool()
        Template = pool.get('account.dunning.template')
        level = levels[message.level_id]
        if template is None and message.channel != 'sms':
            template = level.template_for(message.tone)
        if template is not None and getattr(
                template, 'kind', 'email') == 'email':
            if level.formal_notice or level.collection:
                def fill(value):
                    return '\n'.join(line for line in value.split('\n')
                        if not OUR_PLACEHOLDERS.search(line))
            else:
                link = survey_link(texts.config, message.key)

                def fill(value):
                    return OUR_PLACEHOLDERS.sub(link, value)
            template = Template(**{
                    name: (fill(value) if isinstance(value, str) else value)
                    for name, value in (
                        (n, getattr(template, n)) for n, f
                        in Template._fields.items()
                        if f._type in {'char', 'text', 'selection'}
                        and not hasattr(f, 'getter'))})
        return super().render_one(message, details, levels, texts, offers,
            template=template)


def survey_link(configuration, key, today=None):
    "The absolute survey link of the reminder keyed key, or an empty text"
    base = portal_base(configuration)
    if not base:
        return ''
    today = today or dt.date.today()
    token = sign_survey(MESSAGE, key,
        today + dt.timedelta(days=SURVEY_DAYS))
    return f'{base}/survey/{token}'


class ResultMixin(ModelSQL, ModelView):
    "The answers grouped by one column, with their count and average"
    answers = fields.Integer("Answers")
    average_score = fields.Float("Average Ease", digits=(3, 2),
        help="From 1 (very hard to pay) to 5 (very easy).")
    low_scores = fields.Integer("Hard (1-2)",
        help="How many found it hard or very hard to pay.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('answers', 'DESC'), ('id', 'ASC')]

    @classmethod
    def _group_column(cls, answer):
        raise NotImplementedError

    @classmethod
    def table_query(cls):
        pool = Pool()
        Answer = pool.get('account.dunning.survey.answer')
        answer = Answer.__table__()
        context = Transaction().context
        where = answer.company == context.get('company', -1)
        if context.get('from_date'):
            where &= answer.date >= context['from_date']
        if context.get('to_date'):
            where &= answer.date <= context['to_date']
        column = cls._group_column(answer)
        low = Sum(Case((answer.score <= 2, 1), else_=0))
        return answer.select(
            Min(answer.id).as_('id'),
            column,
            Count(answer.id).as_('answers'),
            Avg(answer.score * Literal(1.0)).as_('average_score'),
            low.as_('low_scores'),
            where=where, group_by=[column.expression])


class ResultByLevel(ResultMixin):
    "Survey Results by Level"
    __name__ = 'account.dunning.survey.result.level'
    level = fields.Many2One('account.dunning.level', "Level")

    @classmethod
    def _group_column(cls, answer):
        return answer.level.as_('level')


class ResultByChannel(ResultMixin):
    "Survey Results by Channel"
    __name__ = 'account.dunning.survey.result.channel'
    channel = fields.Selection('get_channels', "Channel")

    @classmethod
    def get_channels(cls):
        pool = Pool()
        Answer = pool.get('account.dunning.survey.answer')
        return Answer.get_channels()

    @classmethod
    def _group_column(cls, answer):
        return answer.channel.as_('channel')


class ResultBySegment(ResultMixin):
    "Survey Results by Segment"
    __name__ = 'account.dunning.survey.result.segment'
    segment = fields.Selection([(None, "")] + SEGMENT_SELECTION, "Segment")

    @classmethod
    def _group_column(cls, answer):
        return answer.segment.as_('segment')


class ResultContext(ModelView):
    "Survey Results Context"
    __name__ = 'account.dunning.survey.result.context'
    from_date = fields.Date("From")
    to_date = fields.Date("To")


def parse_answer(form):
    """(score, comment) of the posted form, else raise ValueError with
    what is wrong"""
    text = form.get('score', '')
    if not text.isdigit() or int(text) not in SCORES:
        raise ValueError(gettext('dunning_portal.msg_survey_score'))
    comment = form.get('comment', '').strip()
    if len(comment) > COMMENT_MAX:
        raise ValueError(gettext('dunning_portal.msg_survey_comment_long',
                length=len(comment), maximum=COMMENT_MAX))
    return int(text), comment


@route('/survey/<token>', methods=('GET', 'POST'), login=False)
def survey(request, pool, portal, token):
    """The two questions: GET shows them, POST keeps the answer. A reminder
    or a payment takes one answer: a second one is refused, and the page
    says so."""
    Answer = pool.get('account.dunning.survey.answer')
    today = pool.get('ir.date').today()
    try:
        subject = Answer.subject(token, today)
    except ValueError as exception:
        return portal.render('survey_invalid.html',
            status=HTTPStatus.GONE if str(exception) == 'expired'
            else HTTPStatus.BAD_REQUEST,
            message=gettext(f'dunning_portal.msg_survey_link_{exception}'))
    with portal.speak_to(subject['party']):
        return answer_survey(request, portal, Answer, subject, today)


def answer_survey(request, portal, Answer, subject, today):
    "The survey page of a valid link, in the customer's language"
    answered = Answer.answered(subject)
    if answered:
        return portal.render('survey_done.html', answer=answered,
            already=True,
            status=(HTTPStatus.CONFLICT if request.method == 'POST'
                else HTTPStatus.OK))
    values = {'subject': subject, 'scores': SCORES, 'score': None,
        'comment': '', 'comment_max': COMMENT_MAX, 'error': None}
    if request.method == 'POST':
        try:
            score, comment = parse_answer(request.form)
        except ValueError as exception:
            values.update(error=str(exception),
                score=request.form.get('score'),
                comment=request.form.get('comment', ''))
            return portal.render('survey.html',
                status=HTTPStatus.BAD_REQUEST, **values)
        answer = Answer.answer(subject, score, comment, today)
        return portal.render('survey_done.html', answer=answer,
            already=False)
    return portal.render('survey.html', **values)
