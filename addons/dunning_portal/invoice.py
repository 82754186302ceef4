"""Invoices as the customer sees them in the portal: their status, and a
dispute that stops their reminders and tells the accountant."""
from sql import Literal, Null

from trytond.i18n import gettext
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from trytond.modules.dunning_advanced.bulk import chunks, in_

PORTAL_DISPUTE = 'portal_dispute'
REASON_MAX = 2000


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    @classmethod
    def portal_statuses(cls, party, invoices, date):
        """Return {invoice id: status} of the party's open invoices, dicts
        with ``id``, ``lines`` (open receivable line ids) and
        ``maturity_date``: 'disputed' when a dispute holds one of its lines,
        'overdue' when due before date, else 'open'.

        Extend it to add a status; one query whatever the number of
        invoices.
        """
        pool = Pool()
        dunning = pool.get('account.dunning').__table__()
        cursor = Transaction().connection.cursor()
        line_ids = [l for i in invoices for l in i['lines']]
        disputed = set()
        for sub in chunks(line_ids):
            cursor.execute(*dunning.select(dunning.line,
                    where=in_(dunning.line, sub)
                    & (dunning.blocked == Literal(True))
                    & ((dunning.block_until == Null)
                        | (dunning.block_until >= date))))
            disputed.update(l for l, in cursor)
        statuses = {}
        for info in invoices:
            if disputed.intersection(info['lines']):
                statuses[info['id']] = 'disputed'
            elif info['maturity_date'] and info['maturity_date'] < date:
                statuses[info['id']] = 'overdue'
            else:
                statuses[info['id']] = 'open'
        return statuses

    @classmethod
    def portal_dispute(cls, invoice, info, status, reason, user):
        """Block the dunning of the invoice's open lines for reason, as the
        accountant's Dispute button does, and open a task for the
        accountant.

        info is the invoice as `pages.open_invoices` gives it, None once
        paid; status is its portal status. Lines not yet dunned get a
        dunning at the first level of their procedure, blocked: the run
        takes them where they belong once the dispute is lifted.
        """
        pool = Pool()
        Dunning = pool.get('account.dunning')
        Task = pool.get('account.dunning.task')
        Audit = pool.get('account.dunning.audit')
        Date = pool.get('ir.date')
        if not reason:
            raise ValidationError(gettext(
                    'dunning_portal.msg_dispute_reason_required'))
        if len(reason) > REASON_MAX:
            raise ValidationError(gettext(
                    'dunning_portal.msg_dispute_reason_too_long',
                    length=len(reason), maximum=REASON_MAX))
        if info is None:
            raise ValidationError(gettext(
                    'dunning_portal.msg_dispute_paid',
                    invoice=invoice.number))
        if status == 'disputed':
            raise ValidationError(gettext(
                    'dunning_portal.msg_dispute_already',
                    invoice=invoice.number))
        dunnings = Dunning.search([('line', 'in', info['lines'])])
        missing = sorted(set(info['lines']) - {d.line.id for d in dunnings})
        if missing:
            procedure = invoice.party.dunning_procedure
            levels = [l for l in (procedure.levels if procedure else [])
                if l.effective_offset is not None]
            if not levels:
                raise ValidationError(gettext(
                        'dunning_portal.msg_dispute_no_procedure',
                        invoice=invoice.number))
            first = min(levels,
                key=lambda l: (l.effective_offset, l.sequence or 0, l.id))
            dunnings += Dunning.create([{
                        'company': invoice.company.id,
                        'line': line_id,
                        'procedure': procedure.id,
                        'level': first.id,
                        'date': Date.today(),
                        'state': 'waiting',
                        } for line_id in missing])
        Dunning.write(dunnings, {
                'blocked': True,
                'block_reason': reason,
                'block_until': None,
                })
        task = Task(company=invoice.company, party=invoice.party,
            kind=PORTAL_DISPUTE, date=Date.today(), amount=info['amount'],
            note=gettext('dunning_portal.msg_dispute_task_note',
                invoice=invoice.number, user=user.email or user.id,
                reason=reason))
        task.save()
        Audit.record([Audit.entry('task_created', party=invoice.party,
                    lines=info['lines'], date=Date.today(),
                    amount=info['amount'], reason=PORTAL_DISPUTE)])
        return task


class Task(metaclass=PoolMeta):
    __name__ = 'account.dunning.task'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        selection = list(cls.kind.selection)
        if PORTAL_DISPUTE not in dict(selection):
            selection.append(
                (PORTAL_DISPUTE, "Review a dispute from the portal"))
        cls.kind.selection = selection
