"""Append-only log of every dunning decision and action."""
import datetime as dt

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.model.exceptions import AccessError
from trytond.pyson import Eval
from trytond.transaction import Transaction

from . import bulk

KINDS = [
    ('level_reached', "Level Reached"),
    ('message_queued', "Message Queued"),
    ('message_deferred', "Message Deferred"),
    ('message_merged', "Message Merged"),
    ('message_sent', "Message Sent"),
    ('message_failed', "Message Failed"),
    ('message_retried', "Message Retried"),
    ('fee_posted', "Fee Posted"),
    ('interest_posted', "Interest Posted"),
    ('ordering_blocked', "Ordering Blocked"),
    ('ordering_unblocked', "Ordering Unblocked"),
    ('collection', "Handed to Collections"),
    ('task_created', "Task Created"),
    ('dispute', "Disputed"),
    ('dispute_lifted', "Dispute Lifted"),
    ('manual', "Manual Change"),
    ('segment_pinned', "Segment Pinned"),
    ('early_discount', "Early-Payment Discount"),
    ('reward_proposed', "On-Time Reward Proposed"),
    ('consent_changed', "Consent Changed"),
    ('personal_data_erased', "Personal Data Erased"),
    ('block_overridden', "Block Overridden"),
    ('signing_key_rotated', "Signing Key Rotated"),
    ]


class Audit(ModelSQL, ModelView):
    "Dunning Audit Entry"
    __name__ = 'account.dunning.audit'
    company = fields.Many2One('company.company', "Company", readonly=True)
    timestamp = fields.Timestamp("Timestamp", readonly=True)
    date = fields.Date("Date", readonly=True,
        help="The dunning date the entry is about.")
    user = fields.Many2One('res.user', "User", readonly=True)
    kind = fields.Selection(KINDS, "Kind", readonly=True)
    party = fields.Many2One('party.party', "Party", readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    level = fields.Many2One('account.dunning.level', "Level", readonly=True)
    lines = fields.Text("Lines", readonly=True,
        help="The receivable lines concerned, by id.")
    message = fields.Many2One(
        'account.dunning.message', "Message", readonly=True)
    amount = fields.Numeric("Amount", digits=(16, 2), readonly=True)
    reason = fields.Text("Reason", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.timestamp, Index.Range())))
        cls._order = [('timestamp', 'DESC'), ('id', 'DESC')]

    @classmethod
    def check_modification(cls, mode, entries, values=None, external=False):
        super().check_modification(
            mode, entries, values=values, external=external)
        if mode in {'write', 'delete'}:
            raise AccessError(gettext('dunning_advanced.msg_audit_readonly'))

    @classmethod
    def entry(cls, kind, party=None, level=None, lines=(), message=None,
            amount=None, reason=None, date=None):
        "Return the values of an entry; record() writes many at once"
        return {
            'kind': kind,
            'party': getattr(party, 'id', party),
            'level': getattr(level, 'id', level),
            'lines': ' '.join(str(int(l)) for l in lines) or None,
            'message': getattr(message, 'id', message),
            'amount': amount,
            'reason': reason,
            'date': date,
            }

    @classmethod
    def record(cls, entries):
        "Insert entries in one statement, bypassing nothing but the ORM loop"
        if not entries:
            return
        transaction = Transaction()
        table = cls.__table__()
        company = transaction.context.get('company')
        user = transaction.context.get('user') or transaction.user
        now = dt.datetime.now()
        columns = [
            table.create_uid, table.create_date, table.company,
            table.timestamp, table.user, table.kind, table.party,
            table.level, table.lines, table.message, table.amount,
            table.reason, table.date]
        values = [[
                transaction.user, now, company, now, user, e['kind'],
                e['party'], e['level'], e['lines'], e['message'],
                e['amount'], e['reason'], e['date']]
            for e in entries]
        bulk.insert(table, columns, values)
