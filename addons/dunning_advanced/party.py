"""The party's dunning state, its contact for reminders and blocked ordering."""
from sql import Null

from trytond.model import fields
from trytond.pool import PoolMeta
from trytond.transaction import Transaction

from . import signing


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'
    dunning_ordering_blocked = fields.Boolean(
        "Ordering Blocked", readonly=True,
        help="New sales orders are refused while a line sits at or past a "
        "level that blocks ordering.")
    dunning_messages = fields.One2Many(
        'account.dunning.message', 'party', "Dunning Messages",
        readonly=True)
    dunning_tasks = fields.One2Many(
        'account.dunning.task', 'party', "Dunning Tasks", readonly=True)
    dunning_audit = fields.One2Many(
        'account.dunning.audit', 'party', "Dunning Audit", readonly=True)

    @classmethod
    def default_dunning_ordering_blocked(cls):
        return False

    @classmethod
    def copy(cls, parties, default=None):
        default = default.copy() if default else {}
        for name in ['dunning_ordering_blocked', 'dunning_messages',
                'dunning_tasks', 'dunning_audit']:
            default.setdefault(name, None)
        return super().copy(parties, default=default)


class ContactMechanism(metaclass=PoolMeta):
    __name__ = 'party.contact_mechanism'
    dunning = fields.Boolean(
        "Dunning", help="Send payment reminders to this contact.")

    @classmethod
    def usages(cls, _fields=None):
        if _fields is None:
            _fields = []
        _fields.append('dunning')
        return super().usages(_fields=_fields)


class Configuration(metaclass=PoolMeta):
    __name__ = 'account.configuration'
    dunning_portal_url = fields.Char(
        "Portal URL",
        help="Where reminders send customers to see and pay their invoices.")
    dunning_contact = fields.Char(
        "Dunning Contact", translate=True,
        help="Who customers reach about reminders (name, phone, email).")
    dunning_payment_instructions = fields.Text(
        "Payment Instructions", translate=True,
        help="How to pay, shown in every reminder (bank details).")
    dunning_privacy_notice = fields.Text(
        "Privacy Notice", translate=True,
        help="Shown at the foot of every reminder.")

    @classmethod
    def __register__(cls, module_name):
        super().__register__(module_name)
        signing.create_table()
        table_h = cls.__table_handler__(module_name)
        if table_h.column_exist('dunning_secret'):
            cls._move_secret_to_signing_keys()
            table_h.drop_column('dunning_secret')

    @classmethod
    def _move_secret_to_signing_keys(cls):
        # The secret of a readable field becomes the current key, so that
        # the links already sent keep working; a rotation retires it.
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.dunning_secret,
                where=table.dunning_secret != Null, limit=1))
        row = cursor.fetchone()
        if row and not signing.accepted_keys():
            signing.add_key(None, row[0])
