"""Customers' web users: the one-time login links of reminders, the links
already used, and password reset links that land on the portal."""
import datetime as dt
import hashlib
import secrets
import urllib.parse

from trytond import config
from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.modules.dunning_advanced import signing
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

LINK_PURPOSE = 'portal-login'


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
        super().set_password(users, name, value)
        if value == 'x' * 10:
            # web_user's placeholder of an unchanged password
            return
        keep = Transaction().context.get('web_user_session')
        with without_check_access():
            Session.delete(Session.search([
                        ('user', 'in', [u.id for u in users]),
                        ('key', '!=', keep),
                        ]))

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
