"""The party's dunning state, its contact for reminders and blocked ordering."""
import secrets

from trytond.model import fields
from trytond.pool import PoolMeta


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
    dunning_secret = fields.Char(
        "Dunning Secret", readonly=True,
        help="Signs the links of reminders; generated on first use.")

    def get_dunning_secret(self):
        if not self.dunning_secret:
            self.dunning_secret = secrets.token_hex(32)
            self.save()
        return self.dunning_secret
