"""Customers' web users: the one-time login links of reminders, the links
already used, and password reset links that land on the portal."""
import datetime as dt
import hashlib
import logging
import math
import secrets
import urllib.parse
from functools import cache
from pathlib import Path

from sql import Null
from sql.aggregate import Min

from trytond import config
from trytond.exceptions import RateLimitException
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.modules.dunning_advanced import signing
from trytond.pool import Pool, PoolMeta
from trytond.res.user import PASSWORD_HASH
from trytond.transaction import Transaction, without_check_access

from .exceptions import PortalPasswordError

LINK_PURPOSE = 'portal-login'
MIN_PASSWORD = 8
COMMON_PASSWORDS = Path(__file__).parent / 'common_passwords.txt'
logger = logging.getLogger(__name__)


@cache
def common_passwords():
    "The lowercase passwords of common_passwords.txt"
    return {line.strip().lower()
        for line in COMMON_PASSWORDS.read_text(encoding='utf-8').splitlines()
        if line.strip() and not line.startswith('#')}


@cache
def unknown_hash():
    """The hash an unknown address's password is checked against: the same
    work as a known one's, so that the time tells nothing; made once, as
    making it costs as much again"""
    return PASSWORD_HASH.hash(secrets.token_urlsafe(32))


def max_attempts():
    "Failed logins of an address allowed per [session] timeout"
    return config.getint('session', 'max_attempt', default=5)


def max_network_attempts():
    "Failed logins from a client network allowed per [session] timeout"
    return config.getint('session', 'max_attempt_ip_network', default=300)


def link_days():
    "How long a reminder's login link works"
    return config.getint('dunning_portal', 'link_days', default=14)


def portal_base(configuration):
    "The portal's address under the configuration's portal URL"
    if configuration.dunning_portal_url:
        return configuration.dunning_portal_url.rstrip('/') + '/portal'


def sign_link(party_id, expires, nonce=None):
    """A login token for party_id until expires (an aware datetime), with a
    random nonce so that each reminder has a link of its own"""
    nonce = nonce or secrets.token_hex(8)
    payload = f'{party_id}.{int(expires.timestamp())}.{nonce}'
    # The purpose keeps an opt-out token from ever passing for a login one.
    return f'{payload}.{signing.sign(f"{LINK_PURPOSE}.{payload}")}'


def read_link(token, now):
    "Return the party id of a valid token, else raise ValueError"
    # hmac compares only ASCII text: anything else was never ours.
    if not token.isascii():
        raise ValueError('malformed')
    try:
        party_id, expires, nonce, signature = token.split('.')
        party_id, expires = int(party_id), int(expires)
    except ValueError:
        raise ValueError('malformed')
    if not signing.verify(
            f'{LINK_PURPOSE}.{party_id}.{expires}.{nonce}', signature):
        raise ValueError('forged')
    if expires < now.timestamp():
        raise ValueError('expired')
    return party_id


def link_url(configuration, party_id, now=None):
    "A new one-time login link of the party, None without a portal URL"
    base = portal_base(configuration)
    if base:
        now = now or dt.datetime.now(dt.UTC)
        token = sign_link(party_id, now + dt.timedelta(days=link_days()))
        return f'{base}/login/{token}'


class UsedLink(ModelSQL, ModelView):
    "Used Portal Login Link"
    __name__ = 'web.user.portal_link'
    token_hash = fields.Char("Token Hash", required=True, readonly=True,
        strip=False, help="The SHA-256 of the link's token, never the token.")
    party = fields.Many2One('party.party', "Party", required=True,
        readonly=True, ondelete='CASCADE')
    user = fields.Many2One('web.user', "Web User", readonly=True,
        ondelete='SET NULL')
    used_at = fields.Timestamp("Used at", required=True, readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [
            ('token_hash_unique', Unique(t, t.token_hash),
                'dunning_portal.msg_link_used'),
            ]
        cls._sql_indexes.add(Index(t, (t.party, Index.Equality())))
        cls._order = [('used_at', 'DESC'), ('id', 'DESC')]

    @staticmethod
    def digest(token):
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def consume(cls, token, party, user):
        """Record the token as used; return False when it already was.

        The insert itself decides: of two clicks at the same time, the
        unique hash lets one through.
        """
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        digest = cls.digest(token)
        cursor.execute(*table.select(table.id,
                where=table.token_hash == digest, limit=1))
        if cursor.fetchone():
            return False
        cls.create([{
                    'token_hash': digest,
                    'party': party.id,
                    'user': user.id,
                    'used_at': dt.datetime.now(),
                    }])
        return True


class User(metaclass=PoolMeta):
    __name__ = 'web.user'

    @classmethod
    def portal_closed(cls, party):
        """Whether the accountant deactivated the party's web user: it has
        none active but one with an email (the users made for the links
        without email are inactive from the start, as web_user requires
        an email of an active user)"""
        if cls.search([('party', '=', party.id)], limit=1):
            return False
        return bool(cls.search([
                    ('party', '=', party.id),
                    ('active', '=', False),
                    ('email', '!=', None),
                    ], limit=1))

    @classmethod
    def portal_user(cls, party):
        """The web user a login link logs the party in as: its active one,
        else one made for the links, with the party's email if no other
        user has it and without password (a reset sets one). None when
        the accountant closed the party's access (`portal_closed`)."""
        pool = Pool()
        Run = pool.get('account.dunning.run')
        Company = pool.get('company.company')
        if cls.portal_closed(party):
            return None
        users = cls.search([
                ('party', '=', party.id),
                ['OR', ('active', '=', True), ('email', '=', None)],
                ], order=[('active', 'DESC'), ('id', 'ASC')], limit=1)
        if users:
            return users[0]
        company = Company(Transaction().context['company'])
        email = Run.load_recipients(company, [party.id]).get(
            party.id, {}).get('email')
        if email and cls.search([
                    ('email', '=', email.lower()),
                    ], limit=1):
            email = None
        user, = cls.create([{
                    'party': party.id,
                    'email': email,
                    'active': bool(email),
                    }])
        return user

    @classmethod
    def set_password(cls, users, name, value):
        """A new password ends every session of the users but the one of
        the person who set it, the context's ``web_user_session``: whoever
        knew the old password is logged out"""
        pool = Pool()
        Session = pool.get('web.user.session')
        if value == 'x' * 10:
            # web_user's placeholder of an unchanged password
            return
        if value:
            cls.validate_portal_password(value, users)
        super().set_password(users, name, value)
        keep = Transaction().context.get('web_user_session')
        with without_check_access():
            Session.delete(Session.search([
                        ('user', 'in', [u.id for u in users]),
                        ('key', '!=', keep),
                        ]))

    @classmethod
    def validate_portal_password(cls, password, users):
        """Refuse a password shorter than Tryton's [password] length (8 at
        least) or common: the module's list, then Tryton's own checks of
        res.user ([password] forbidden, the user's email)"""
        pool = Pool()
        ResUser = pool.get('res.user')
        length = max(MIN_PASSWORD,
            config.getint('password', 'length', default=0))
        if len(password) < length:
            raise PortalPasswordError(gettext(
                    'dunning_portal.msg_password_short', length=length))
        if password.lower() in common_passwords():
            raise PortalPasswordError(gettext(
                    'dunning_portal.msg_password_common'))
        ResUser.validate_password(password, users)

    @classmethod
    def authenticate(cls, email, password):
        """web_user's check of the email and password, without its sleep in
        the request thread (six wrong passwords held a thread 31 s): past
        [session] max_attempt failures of the address, or
        max_attempt_ip_network from the client's network, within [session]
        timeout, it raises RateLimitException at once;
        `login_retry_after` says until when.
        An unknown address costs the same hashing as a known one."""
        pool = Pool()
        Attempt = pool.get('web.user.authenticate.attempt')
        email = email.lower()
        if (Attempt.count_ip() >= max_network_attempts()
                or Attempt.count(email) >= max_attempts()):
            raise RateLimitException()
        users = cls.search([('email', '=', email)], limit=1)
        user = users[0] if users else None
        hash_ = user.password_hash if user else None
        valid, new_hash = cls.check_password(password, hash_ or unknown_hash())
        if user and hash_ and valid:
            if new_hash:
                logger.info("Update password hash for %s", user.id)
                with Transaction().new_transaction():
                    with without_check_access():
                        cls.write([cls(user.id)], {
                                'password_hash': new_hash,
                                })
            Attempt.remove(email)
            return user
        Attempt.add(email)

    @classmethod
    def login_retry_after(cls, email):
        """Seconds until a login of email is tried again: when the oldest
        failure counted against the address or the client's network is
        out of [session] timeout"""
        pool = Pool()
        Attempt = pool.get('web.user.authenticate.attempt')
        table = Attempt.__table__()
        cursor = Transaction().connection.cursor()
        _, network = Transaction().remote_address()
        if Attempt.count_ip() >= max_network_attempts():
            where = table.ip_network == (str(network) if network else None)
        else:
            where = (table.login == email.lower()[:Attempt.login.size]) & (
                table.device_cookie == Null)
        cursor.execute(*table.select(Min(table.create_date),
                where=where & (table.create_date >= Attempt.delay())))
        oldest, = cursor.fetchone()
        if not oldest:
            return 1
        if isinstance(oldest, str):
            oldest = dt.datetime.fromisoformat(oldest)
        window = dt.timedelta(seconds=config.getint('session', 'timeout'))
        left = (oldest + window - dt.datetime.now()).total_seconds()
        return max(1, math.ceil(left))

    @classmethod
    def set_password_token(cls, email, token, password):
        """web_user's reset by the link emailed to the address, without its
        sleep: the token is random and used once, and the link reaches the
        customer whatever wrong passwords others typed for the address"""
        pool = Pool()
        Attempt = pool.get('web.user.authenticate.attempt')
        email = email.lower()
        users = cls.search([('email', '=', email)], limit=1)
        if users:
            user, = users
            expire = user.reset_password_token_expire
            if user.reset_password_token and secrets.compare_digest(
                    user.reset_password_token.encode(), token.encode()):
                user.clear_reset_password_token()
                if expire > dt.datetime.now():
                    user.password = password
                    user.save()
                    # The customer proved the address: logins work again.
                    Attempt.remove(email)
                    return True
                user.save()
        return False

    def get_email_reset_password_url(self, url=None):
        "The portal's reset page unless the configuration names another"
        pool = Pool()
        Configuration = pool.get('account.configuration')
        if url is None and config.get('web', 'reset_password_url') is None:
            base = portal_base(Configuration(1))
            if base and self.reset_password_token:
                return f'{base}/reset/{self.reset_password_token}?' + (
                    urllib.parse.urlencode({'email': self.email}))
        return super().get_email_reset_password_url(url=url)

    @classmethod
    def reset_password_users(cls, email):
        "The active users of email with a password or a party to log in"
        return cls.search([
                ('email', '=', email.lower()),
                ('party', '!=', None),
                ], limit=1)
