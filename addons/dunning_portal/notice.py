"""The portal channel of the outbox: a notice the customer finds as a
banner on each visit until they dismiss it, and the one-time login link of
every other reminder."""
import copy
import datetime as dt

from sql import Literal, Null

from trytond.model import fields
from trytond.modules.dunning_advanced.bulk import chunks, in_
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction

from .web_user import link_url, portal_base

PORTAL = 'portal'
BANNERS = 5
# The key of the template preview: its link must not log anybody in.
PREVIEW_KEY = 'preview'


class Message(metaclass=PoolMeta):
    __name__ = 'account.dunning.message'
    portal_read_at = fields.Timestamp("Dismissed in Portal", readonly=True,
        states={'invisible': Eval('channel') != PORTAL},
        help="When the customer dismissed the notice in the portal: "
        "until then it shows on each visit.")

    @classmethod
    def get_channels(cls):
        return super().get_channels() + [(PORTAL, "Portal")]

    @classmethod
    def copy(cls, messages, default=None):
        default = default.copy() if default else {}
        default.setdefault('portal_read_at', None)
        return super().copy(messages, default=default)

    def _send_portal(self):
        "Sent as soon as stored: the portal shows it on the next visit"

    @classmethod
    def portal_notices(cls, party):
        """The party's portal notices not dismissed yet, newest first: the
        latest is never hidden behind older ones"""
        return cls.search([
                ('party', '=', party.id),
                ('channel', '=', PORTAL),
                ('state', '=', 'sent'),
                ('portal_read_at', '=', None),
                ], order=[('sent_at', 'DESC'), ('id', 'DESC')],
            limit=BANNERS)

    @classmethod
    def portal_read(cls, message_ids):
        "Record when the customer dismissed the notices, once"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        now = dt.datetime.now()
        for sub in chunks(message_ids):
            cursor.execute(*table.update(
                    [table.portal_read_at, table.write_date],
                    [now, now],
                    where=in_(table.id, sub)
                    & (table.channel == PORTAL)
                    & (table.portal_read_at == Null)))


class Renderer(metaclass=PoolMeta):
    __name__ = 'account.dunning.renderer'

    @classmethod
    def render_one(cls, message, details, levels, texts, offers,
            template=None):
        """Each reminder links to the portal with a login link of its own;
        a portal notice, read once logged in, links to the pages."""
        base = portal_base(texts.config)
        if base and message.key != PREVIEW_KEY:
            # A copy: the texts are shared by the messages of the batch.
            texts = copy.copy(texts)
            if message.channel == PORTAL:
                texts.portal_link = f'{base}/'
                texts.opt_out_link = lambda party_id: f'{base}/preferences'
            else:
                texts.portal_link = link_url(texts.config, message.party_id)
        return super().render_one(message, details, levels, texts, offers,
            template=template)


class Run(metaclass=PoolMeta):
    __name__ = 'account.dunning.run'

    @classmethod
    def load_recipients(cls, company, party_ids):
        "A party with a web user is reached in the portal"
        pool = Pool()
        user = pool.get('web.user').__table__()
        cursor = Transaction().connection.cursor()
        recipients = super().load_recipients(company, party_ids)
        for sub in chunks(party_ids):
            cursor.execute(*user.select(user.party, user.email,
                    where=in_(user.party, sub)
                    & ((user.active == Literal(True)) | (user.email == Null)),
                    order_by=[user.party, user.active.desc, user.id]))
            for party_id, email in cursor:
                recipients.setdefault(party_id, {}).setdefault(
                    PORTAL, email or PORTAL)
        return recipients
