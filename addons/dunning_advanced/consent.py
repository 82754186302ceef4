"""Whether each customer agrees to be reminded on each channel, with every
change kept and what proves it.

A party without any row for a channel has consent: invoice reminders to a
business rest on legitimate interest until the customer says otherwise.
"""
import datetime as dt

from sql.aggregate import Max

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.model.exceptions import AccessError
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from .bulk import chunks, in_

CHANNELS = [
    ('email', "Email"),
    ('sms', "SMS"),
    ('portal', "Portal"),
    ]
SOURCES = [
    ('form', "Customer Form"),
    ('reply', "Reply"),
    ('opt_out_link', "Opt-out Link"),
    ('accountant', "Accountant"),
    ('provider', "Provider"),
    ]


class Consent(ModelSQL, ModelView):
    "Dunning Consent"
    __name__ = 'account.dunning.consent'
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        ondelete='CASCADE')
    channel = fields.Selection(
        CHANNELS, "Channel", required=True, readonly=True)
    state = fields.Selection([
            ('granted', "Granted"),
            ('withdrawn', "Withdrawn"),
            ], "State", required=True, readonly=True, sort=False)
    date = fields.DateTime("Date", required=True, readonly=True)
    source = fields.Selection(
        SOURCES, "Source", required=True, readonly=True,
        help="Who or what changed the consent.")
    proof = fields.Text(
        "Proof", readonly=True,
        help="What shows the customer's choice: the reply received, the "
        "address and browser of the link click, the user who changed it.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t,
                (t.party, Index.Equality()),
                (t.channel, Index.Equality(cardinality='low')),
                (t.id, Index.Range())))
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def check_modification(cls, mode, consents, values=None, external=False):
        super().check_modification(
            mode, consents, values=values, external=external)
        if mode in {'write', 'delete'}:
            raise AccessError(gettext('dunning_advanced.msg_consent_readonly'))

    @classmethod
    def withdrawn_channels(cls, party_ids):
        """Return {party id: channels} the parties withdrew their consent
        from; parties with none withdrawn are left out.

        Rows are only ever appended, so the highest id of a party and
        channel is its current state.
        """
        consent = cls.__table__()
        latest = cls.__table__()
        cursor = Transaction().connection.cursor()
        withdrawn = {}
        for sub_ids in chunks(party_ids):
            cursor.execute(*consent.select(consent.party, consent.channel,
                    where=consent.id.in_(latest.select(Max(latest.id),
                            where=in_(latest.party, sub_ids),
                            group_by=[latest.party, latest.channel]))
                    & (consent.state == 'withdrawn')))
            for party_id, channel in cursor:
                withdrawn.setdefault(party_id, set()).add(channel)
        return {p: frozenset(c) for p, c in withdrawn.items()}

    @classmethod
    def set_consent(cls, parties, channel, granted, source, proof=None):
        """Record that the parties granted or withdrew their consent to be
        reminded on channel; return the parties whose consent changed."""
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        Party = pool.get('party.party')
        parties = list({p.id: p for p in parties}.values())
        withdrawn = cls.withdrawn_channels([p.id for p in parties])
        changed = [p for p in parties
            if (channel in withdrawn.get(p.id, ())) == bool(granted)]
        if not changed:
            return []
        state = 'granted' if granted else 'withdrawn'
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        # The party's writer decides: consent rows have no create access
        # of their own so that nobody forges a history from the client.
        with without_check_access():
            cls.create([{
                        'party': p.id,
                        'channel': channel,
                        'state': state,
                        'date': now,
                        'source': source,
                        'proof': proof,
                        } for p in changed])
            if channel == 'email':
                Party.sync_dunning_email_opt_out(changed, not granted)
        Audit.record([Audit.entry('consent_changed', party=p,
                    reason=f"{channel} {state} ({source})")
                for p in changed])
        return changed

    @classmethod
    def accountant_proof(cls):
        "The proof of a change made by a user of Tryton"
        pool = Pool()
        User = pool.get('res.user')
        transaction = Transaction()
        user_id = transaction.context.get('user') or transaction.user
        return f'user {User(user_id).login}'


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'
    dunning_consents = fields.One2Many(
        'account.dunning.consent', 'party', "Consents", readonly=True,
        order=[('date', 'DESC'), ('id', 'DESC')],
        help="Every change of consent, newest first.")
    dunning_email_consent = fields.Function(fields.Boolean(
            "Email Reminders",
            help="The customer agrees to get reminders by email."),
        'get_dunning_consent', setter='set_dunning_consent')
    dunning_sms_consent = fields.Function(fields.Boolean(
            "SMS Reminders",
            help="The customer agrees to get reminders by SMS."),
        'get_dunning_consent', setter='set_dunning_consent')
    dunning_portal_consent = fields.Function(fields.Boolean(
            "Portal Notices",
            help="The customer agrees to get notices in the portal."),
        'get_dunning_consent', setter='set_dunning_consent')
    # Stored because the run reads it in SQL; set_consent keeps it equal
    # to the email consent.
    dunning_email_opt_out = fields.Boolean(
        "No Email Reminders",
        help="The customer asked not to get reminders by email; formal "
        "notices still go by letter.")

    @classmethod
    def default_dunning_email_opt_out(cls):
        return False

    @classmethod
    def default_dunning_email_consent(cls):
        return True

    @classmethod
    def default_dunning_sms_consent(cls):
        return True

    @classmethod
    def default_dunning_portal_consent(cls):
        return True

    @classmethod
    def copy(cls, parties, default=None):
        default = default.copy() if default else {}
        default.setdefault('dunning_consents', None)
        default.setdefault('dunning_email_opt_out', False)
        return super().copy(parties, default=default)

    @classmethod
    def get_dunning_consent(cls, parties, names):
        pool = Pool()
        Consent = pool.get('account.dunning.consent')
        withdrawn = Consent.withdrawn_channels([p.id for p in parties])
        return {name: {
                p.id: cls._consent_channel(name) not in withdrawn.get(
                    p.id, ())
                for p in parties}
            for name in names}

    @classmethod
    def set_dunning_consent(cls, parties, name, value):
        pool = Pool()
        Consent = pool.get('account.dunning.consent')
        Consent.set_consent(parties, cls._consent_channel(name), value,
            'accountant', proof=Consent.accountant_proof())

    @staticmethod
    def _consent_channel(name):
        return name[len('dunning_'):-len('_consent')]

    @classmethod
    def create(cls, vlist):
        "Record the consent of those created opted out"
        pool = Pool()
        Consent = pool.get('account.dunning.consent')
        opt_outs = [v.get('dunning_email_opt_out') for v in vlist]
        if any(opt_outs):
            cls._check_opt_out_access()
        vlist = [{k: v for k, v in values.items()
                if k != 'dunning_email_opt_out'} for values in vlist]
        parties = super().create(vlist)
        if opted_out := [p for p, o in zip(parties, opt_outs) if o]:
            Consent.set_consent(opted_out, 'email', False, 'accountant',
                proof=Consent.accountant_proof())
        return parties

    @classmethod
    def write(cls, *args):
        "Writing the opt-out records the email consent"
        pool = Pool()
        Consent = pool.get('account.dunning.consent')
        actions = iter(args)
        args, changes = [], []
        for parties, values in zip(actions, actions):
            if 'dunning_email_opt_out' in values:
                cls._check_opt_out_access()
                values = values.copy()
                changes.append(
                    (parties, not values.pop('dunning_email_opt_out')))
            args.extend((parties, values))
        super().write(*args)
        for parties, granted in changes:
            Consent.set_consent(parties, 'email', granted, 'accountant',
                proof=Consent.accountant_proof())

    @classmethod
    def _check_opt_out_access(cls):
        # The value is taken out before the ORM would check who may write it.
        pool = Pool()
        FieldAccess = pool.get('ir.model.field.access')
        if Transaction().check_access:
            FieldAccess.check(cls.__name__, ['dunning_email_opt_out'], 'write')

    @classmethod
    def sync_dunning_email_opt_out(cls, parties, opt_out):
        "Only the consent changes the column, never a write of the party"
        super().write(parties, {'dunning_email_opt_out': opt_out})
