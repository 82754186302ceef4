"""What every portal page shares: the route decorator, the customer's
session, CSRF protection and the templates.

A portal view is written as::

    @route('/invoices/<int:invoice_id>')
    def invoice(request, pool, portal, invoice_id):
        ...
        return portal.render('invoice.html', invoice=invoice)

``portal`` is the request's `Portal`: the logged-in web user and the party
it speaks for. Views read records with access checks off, so each one must
filter by ``portal.party`` and answer `Portal.not_found` for anything else.
"""
import datetime as dt
import hashlib
import hmac
import secrets
from decimal import Decimal
from functools import cache, cached_property, wraps
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote, urlsplit

import stripe
from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.utils import redirect

from trytond import config
from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.protocols.wrappers import Response, with_pool, with_transaction
from trytond.transaction import Transaction
from trytond.wsgi import app

SESSION_COOKIE = 'dunning_portal_session'
CSRF_COOKIE = 'dunning_portal_csrf'
CSRF_FIELD = 'csrf_token'
UNSAFE_METHODS = {'POST', 'PUT', 'PATCH', 'DELETE'}
STATIC = Path(__file__).parent / 'static'
# What a path segment keeps unencoded (RFC 3986 pchar), as browsers do:
# a cookie's path must match the path the browser requests.
PATH_SAFE = "!$&'()*+,;=:@"
# A session is refreshed at most this often: a page view is a read-only
# transaction, and writing the session on each one would cost a write.
SESSION_REFRESH = dt.timedelta(minutes=5)
# The ir.translation name of the pages' texts: report translations, as
# Tryton's reports have, loaded from each module's locale/*.po.
TEXTS = 'dunning_portal.portal'
# The largest id a database column holds: a larger one in a path is a bad
# link, answered as not found instead of a database error.
MAX_ID = 2 ** 31 - 1
STRIPE_JS = 'https://js.stripe.com/v3/'


def stripe_js():
    "Where the card page loads Stripe.js from (a local one in test mode)"
    return config.get('dunning_portal', 'stripe_js', default=STRIPE_JS)


def origin(url):
    parts = urlsplit(url)
    return f'{parts.scheme}://{parts.netloc}'


def content_security_policy():
    """Scripts, styles and everything else from the portal itself, but
    Stripe.js and what its card form loads, frames and calls (Stripe's own
    list); no inline script or style, and no page of the portal in a frame
    of another site"""
    stripe_origin = origin(stripe_js())
    return '; '.join([
            "default-src 'self'",
            f"script-src 'self' {stripe_origin} https://*.js.stripe.com",
            f"frame-src {stripe_origin} https://*.js.stripe.com "
            "https://hooks.stripe.com",
            # The SDK's API base is the local Stripe of the demo and tests.
            f"connect-src 'self' {origin(stripe.api_base)}",
            "img-src 'self' data: https://*.stripe.com",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            ])


def secure_headers(response):
    """Set the headers of every answer of the portal: its pages and PDFs
    show a customer's accounts, which no cache keeps and no other site
    frames or reads"""
    response.headers['Content-Security-Policy'] = content_security_policy()
    response.headers['X-Frame-Options'] = 'DENY'
    response.headers['X-Content-Type-Options'] = 'nosniff'
    # The portal's paths carry one-time tokens: no other site sees them.
    response.headers['Referrer-Policy'] = 'same-origin'
    response.headers['Cache-Control'] = 'no-store'
    return response


def secure_cookies():
    """Whether the cookies carry Secure whatever the request's scheme:
    behind a TLS proxy trytond sees plain http the browser never spoke.
    Only a portal served on http://localhost (the demo) turns it off."""
    return config.getboolean('dunning_portal', 'secure_cookie', default=True)


def session_idle():
    "How long a session lives without a page view"
    return dt.timedelta(seconds=config.getint(
            'dunning_portal', 'session_idle', default=2 * 60 * 60))


@cache
def static_version(name):
    "A digest of the static file: its URL changes when its content does"
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def format_money(lang, amount, currency):
    """amount in the language's format with the currency's symbol. An
    infinite or undefined amount is a bug upstream: it is refused instead
    of being shown as "inf" or "NaN"."""
    if not Decimal(amount).is_finite():
        raise ValueError(f"refusing to show the amount {amount}")
    return lang.currency(amount, currency, grouping=True)


def translate(text):
    "text in the language of the transaction"
    Translation = Pool().get('ir.translation')
    return Translation.get_report(TEXTS, text)


def translate_plural(singular, plural, count):
    "singular or plural as count asks, in the language of the transaction"
    Translation = Pool().get('ir.translation')
    text = Translation.get_report(TEXTS, singular, plural, count)
    # Without a translation Tryton answers the singular whatever the count.
    if text == singular and count != 1:
        return plural
    return text


TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / 'templates'),
    autoescape=select_autoescape(['html', 'xml']),
    trim_blocks=True, lstrip_blocks=True,
    extensions=['jinja2.ext.i18n'])
TEMPLATES.policies['ext.i18n.trimmed'] = True
TEMPLATES.install_gettext_callables(
    translate, translate_plural, newstyle=True)


class Portal:
    "The customer side of one request"

    def __init__(self, request, pool, database_name, deferred=None):
        self.request = request
        self.pool = pool
        self.database_name = database_name
        self.cookies = {}
        self.deferred = deferred if deferred is not None else []
        self.session_key = request.cookies.get(SESSION_COOKIE)
        self.user = self.session_user(self.session_key)
        self.party = self.user.party if self.user else None
        self.csrf_token = request.cookies.get(CSRF_COOKIE)
        if not self.csrf_token:
            self.csrf_token = secrets.token_urlsafe(32)
            self.set_cookie(CSRF_COOKIE, self.csrf_token, httponly=False)

    def session_user(self, key):
        """The web user of the session key, or None when the session does
        not exist, expired (web_user's ``[session] web_timeout``) or was
        idle longer than ``[dunning_portal] session_idle``."""
        Session = self.pool.get('web.user.session')
        if not key:
            return None
        sessions = Session.search([('key', '=', key)], limit=1)
        if not sessions:
            return None
        session, = sessions
        idle = dt.datetime.now() - session.last_modified_at
        if session.expired or idle > session_idle():
            self.defer(Session.remove, key)
            return None
        user = session.user
        # Users without email exist only for the reminders' login links.
        if not user.party or not (user.active or not user.email):
            return None
        if idle > SESSION_REFRESH:
            self.defer(Session.reset, key)
        return user

    def defer(self, func, *args):
        """Call func(*args) once the request's transaction ended, in a
        read-write transaction of its own: a page view writes what it must
        (a session refreshed, a notice read) without a read-write view."""
        self.deferred.append((func, args))

    @cached_property
    def company(self):
        Company = self.pool.get('company.company')
        company_id = config.getint('dunning_portal', 'company', default=None)
        if company_id:
            return Company(company_id)
        companies = Company.search([], order=[('id', 'ASC')], limit=1)
        return companies[0] if companies else None

    @cached_property
    def lang(self):
        """The code of the customer's language, which is set per company;
        before a login, the browser's preferred one of the translated
        languages"""
        if self.party:
            return self.party_lang(self.party)
        Lang = self.pool.get('ir.lang')
        codes = [l.code for l in Lang.search([('translatable', '=', True)])]
        return self.request.accept_languages.best_match(
            codes, default='en')

    def party_lang(self, party):
        """The code of party's language, as written in the country of its
        address when there is such a language (en_GB for an English speaker
        in the United Kingdom), as the reminders write it"""
        pool = self.pool
        Party = pool.get('party.party')
        Lang = pool.get('ir.lang')
        with Transaction().set_context(
                company=self.company.id if self.company else None):
            party = Party(party.id)
            code = party.lang.code if party.lang else 'en'
            address = party.address_get()
            if '_' not in code and address and address.country:
                regional = f'{code}_{address.country.code}'
                if Lang.search([('code', '=', regional)], limit=1):
                    return regional
            return code

    def speak_to(self, party):
        """Use the language of party, whom a link names without a login,
        for the page and, in the context returned, for the messages"""
        self.lang = self.party_lang(party)
        self.__dict__.pop('lang_record', None)
        return Transaction().set_context(language=self.lang)

    @property
    def lang_tag(self):
        "The language as HTML names it: en-GB for Tryton's en_GB"
        return self.lang.replace('_', '-')

    @cached_property
    def lang_record(self):
        return self.pool.get('ir.lang').get(self.lang)

    @property
    def currency(self):
        return self.company.currency if self.company else None

    def money(self, amount, currency=None):
        "amount as the customer reads money: their language, the currency"
        return format_money(
            self.lang_record, amount, currency or self.currency)

    def date(self, value):
        return self.lang_record.strftime(value) if value else ''

    def static(self, name):
        return self.url(f'static/{name}') + f'?v={static_version(name)}'

    @property
    def root(self):
        "The portal's base path, ending with a slash"
        return f'/{quote(self.database_name, safe=PATH_SAFE)}/portal/'

    def url(self, path=''):
        return self.root + path.lstrip('/')

    def external_url(self, path=''):
        "The absolute URL of a portal path, for emails and providers"
        base = config.get('dunning_portal', 'url',
            default=self.request.host_url.rstrip('/'))
        return base.rstrip('/') + self.url(path)

    def csrf_valid(self):
        sent = (self.request.form.get(CSRF_FIELD)
            or self.request.headers.get('X-CSRF-Token') or '')
        cookie = self.request.cookies.get(CSRF_COOKIE) or ''
        return bool(cookie) and hmac.compare_digest(sent, cookie)

    def set_cookie(self, name, value, max_age=None, httponly=True):
        self.cookies[name] = {
            'value': value, 'max_age': max_age, 'httponly': httponly}

    def login(self, user):
        Session = self.pool.get('web.user.session')
        self.session_key = Session.add(user)
        self.user = user
        self.party = user.party
        self.set_cookie(SESSION_COOKIE, self.session_key,
            max_age=int(Session.timeout().total_seconds()))
        # A token known before the login must not serve after it.
        self.csrf_token = secrets.token_urlsafe(32)
        self.set_cookie(CSRF_COOKIE, self.csrf_token, httponly=False)

    def logout(self):
        if self.session_key:
            self.pool.get('web.user.session').remove(self.session_key)
        self.session_key = self.user = self.party = None
        self.set_cookie(SESSION_COOKIE, '', max_age=0)

    def render(self, template, status=HTTPStatus.OK, **values):
        values.setdefault('portal', self)
        values.setdefault('csrf_field', CSRF_FIELD)
        values.setdefault('request_path', self.request.path)
        with Transaction().set_context(language=self.lang):
            body = TEMPLATES.get_template(template).render(**values)
        return Response(body, status=status,
            content_type='text/html; charset=utf-8')

    def error(self, status, message):
        "A short page saying what went wrong, in the customer's language"
        return self.render('error.html', status=status, message=message)

    def redirect(self, path=''):
        return redirect(self.url(path), code=HTTPStatus.SEE_OTHER)

    @staticmethod
    def not_found():
        "Raise the same 404 for what does not exist and what is not yours"
        raise NotFound()

    def finish(self, response):
        secure = self.request.scheme == 'https' or secure_cookies()
        for name, cookie in self.cookies.items():
            response.set_cookie(name, cookie['value'],
                max_age=cookie['max_age'], path=self.root, secure=secure,
                httponly=cookie['httponly'], samesite='Lax')
        return secure_headers(response)


def route(path, methods=('GET',), login=True):
    """Register a view under /<database>/portal<path>.

    GET runs in a read-only transaction, POST in a read-write one. A POST
    without the CSRF cookie's token is refused with 400 before the view
    runs; a page that needs a login redirects to the login page.
    """
    def decorator(func):
        @app.route('/<database_name>/portal' + path, methods=set(methods))
        @with_pool
        @wraps(func)
        def endpoint(request, pool, **kwargs):
            deferred = []
            response = serve(
                request, pool, pool.database_name, deferred, **kwargs)
            if deferred:
                write_deferred(request, pool, deferred)
            return response

        @with_transaction(context={'_check_access': False})
        def serve(request, pool, database_name, deferred, **kwargs):
            # A transaction retried by Tryton starts the request again.
            deferred.clear()
            portal = Portal(request, pool, database_name, deferred)
            context = {'language': portal.lang}
            if portal.company:
                context['company'] = portal.company.id
            try:
                if (request.method in UNSAFE_METHODS
                        and not portal.csrf_valid()):
                    with Transaction().set_context(**context):
                        response = portal.error(HTTPStatus.BAD_REQUEST,
                            gettext('dunning_portal.msg_portal_csrf'))
                elif any(isinstance(v, int) and v > MAX_ID
                        for v in kwargs.values()):
                    portal.not_found()
                elif login and not portal.user:
                    back = quote(request.path, safe='/' + PATH_SAFE)
                    if request.query_string:
                        back += '?' + request.query_string.decode()
                    response = redirect(
                        portal.url('login') + '?next=' + quote(back, safe=''),
                        code=HTTPStatus.SEE_OTHER)
                else:
                    with Transaction().set_context(**context):
                        response = func(request, pool, portal, **kwargs)
            except HTTPException as exception:
                if exception.code != HTTPStatus.NOT_FOUND:
                    raise
                with Transaction().set_context(**context):
                    response = portal.error(HTTPStatus.NOT_FOUND,
                        gettext('dunning_portal.msg_portal_not_found'))
            return portal.finish(response)
        return endpoint
    return decorator


@with_transaction(readonly=False, context={'_check_access': False})
def write_deferred(request, pool, deferred):
    for func, args in deferred:
        func(*args)
