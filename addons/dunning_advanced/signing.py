"""The keys that sign the links of reminders: login, opt-out and survey.

They live in a table that no model maps, so that no call of the client,
whoever makes it, can read or write them: only this module does. Each
company has a current key, made on first use; a rotation retires it, and
links it signed keep working for the grace period so that reminders
already sent do not break at once."""
import datetime as dt
import hashlib
import hmac
import secrets

from sql import Null, Table

from trytond import backend, config
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import SigningKeyAccessError

TABLE_NAME = 'dunning_signing_key'
# Days a retired key still signs nothing but is accepted, overridden by
# signing_key_grace_days of the dunning_advanced section of trytond.conf.
GRACE_DAYS = 30
SIGNATURE_LENGTH = 32


def grace_period():
    return dt.timedelta(days=config.getint(
            'dunning_advanced', 'signing_key_grace_days', default=GRACE_DAYS))


def create_table():
    "Create the keys' table unless it exists, on the module's update"
    TableHandler = backend.TableHandler
    if TableHandler.table_exist(TABLE_NAME):
        return
    cursor = Transaction().connection.cursor()
    if backend.name == 'sqlite':
        id_column, timestamp = 'id INTEGER PRIMARY KEY AUTOINCREMENT', (
            'DATETIME')
    else:
        id_column, timestamp = 'id SERIAL PRIMARY KEY', (
            'TIMESTAMP WITH TIME ZONE')
    cursor.execute(f'CREATE TABLE "{TABLE_NAME}" ({id_column}, '
        'company INTEGER REFERENCES company_company (id) ON DELETE CASCADE, '
        f'key VARCHAR NOT NULL, created {timestamp} NOT NULL, '
        f'retired {timestamp})')


def _table():
    return Table(TABLE_NAME)


def _aware(value):
    # SQLite keeps the UTC time without its zone.
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _company_clause(table, company):
    if company is None:
        return table.company == Null
    return table.company == company


def _context_company():
    return Transaction().context.get('company') or None


def add_key(company, key=None, created=None):
    "Store a new current key of company, the given one when migrating"
    key = key or secrets.token_hex(32)
    table = _table()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.insert(
            [table.company, table.key, table.created],
            [[company, key, created or dt.datetime.now(dt.UTC)]]))
    return key


def _current_key(company):
    table = _table()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.select(table.key,
            where=_company_clause(table, company) & (table.retired == Null),
            order_by=[table.created.desc, table.id.desc], limit=1))
    row = cursor.fetchone()
    return row[0] if row else None


def current_key(company=None):
    """The key that signs the company's new links, made on first use in a
    transaction of its own when the current one may not write"""
    company = company or _context_company()
    key = _current_key(company)
    if key:
        return key
    transaction = Transaction()
    if not transaction.readonly:
        return add_key(company)
    # The reader's snapshot never sees what the writer commits (PostgreSQL's
    # repeatable read), so the writer looks again and says which key it is.
    with transaction.new_transaction() as writer:
        key = _current_key(company) or add_key(company)
        writer.commit()
    return key


def accepted_keys(now=None):
    "Every company's current key and those retired within the grace period"
    now = now or dt.datetime.now(dt.UTC)
    table = _table()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.select(table.key, table.retired))
    limit = now - grace_period()
    return [key for key, retired in cursor
        if retired is None or _aware(retired) > limit]


def rotate(company=None):
    "Retire the company's current key and make a new one"
    company = company or _context_company()
    table = _table()
    cursor = Transaction().connection.cursor()
    now = dt.datetime.now(dt.UTC)
    cursor.execute(*table.update([table.retired], [now],
            where=_company_clause(table, company) & (table.retired == Null)))
    add_key(company, created=now)


def _signature(key, message):
    return hmac.new(key.encode(), message.encode(),
        hashlib.sha256).hexdigest()[:SIGNATURE_LENGTH]


def sign(message):
    "The signature of message with the current key"
    return _signature(current_key(), message)


def verify(message, signature, now=None):
    "Whether signature signs message with a key still accepted"
    # hmac compares only ASCII text: anything else was never ours.
    if not (message.isascii() and signature.isascii()):
        return False
    return any(hmac.compare_digest(_signature(key, message), signature)
        for key in accepted_keys(now))


class RotateKeyStart(ModelView):
    "Rotate Signing Key"
    __name__ = 'account.dunning.signing_key.rotate.start'
    grace_days = fields.Integer("Grace Days", readonly=True,
        help="How many days the links signed with the current key keep "
        "working after the rotation.")


class RotateKey(Wizard):
    """Replace the company's key that signs the links of reminders, when
    it may have leaked: the links it signed stop working after the grace
    period."""
    __name__ = 'account.dunning.signing_key.rotate'
    start = StateView('account.dunning.signing_key.rotate.start',
        'dunning_advanced.signing_key_rotate_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Rotate", 'rotate', 'tryton-ok', default=True),
            ])
    rotate = StateTransition()

    @classmethod
    def check_access(cls):
        super().check_access()
        cls.check_administrator()

    @classmethod
    def check_administrator(cls):
        # The action's groups guard the client; this guards every caller.
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        User = pool.get('res.user')
        if Transaction().user == 0:
            return
        if ModelData.get_id('res', 'group_admin') not in User.get_groups():
            raise SigningKeyAccessError(gettext(
                    'dunning_advanced.msg_signing_key_rotate_admin_only'))

    def default_start(self, fields):
        self.check_administrator()
        return {'grace_days': grace_period().days}

    def transition_rotate(self):
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        self.check_administrator()
        rotate()
        Audit.record([Audit.entry('signing_key_rotated',
                    reason=gettext('dunning_advanced.msg_signing_key_rotated',
                        days=grace_period().days))])
        return 'end'
