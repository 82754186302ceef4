"""What a level does besides telling the customer: fees, interest, blocking
new orders, handing over to collections and tasks for accountants."""
import csv
import io
from collections import defaultdict
from decimal import Decimal

from sql import Literal

from trytond.i18n import gettext
from trytond.model import Model, ModelSQL, ModelView, Workflow, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction

from .engine import CALL_TASK, COLLECTION, FEE, INTEREST, NO_CONTACT_TASK
from .bulk import in_


class Escalation(Model):
    "Dunning Escalation"
    __name__ = 'account.dunning.escalation'

    @classmethod
    def apply(cls, run, actions, details, dunning_of, context):
        "Apply the actions of one batch, grouped by kind"
        by_kind = defaultdict(list)
        for action in actions:
            by_kind[action.kind].append(action)
        for kind, kind_actions in by_kind.items():
            getattr(cls, f'_apply_{kind}')(
                run, kind_actions, details, dunning_of, context)

    @classmethod
    def _apply_fee(cls, run, actions, details, dunning_of, context):
        pool = Pool()
        Dunning = pool.get('account.dunning')
        Level = pool.get('account.dunning.level')
        FeeDunningLevel = pool.get('account.dunning.fee.dunning_level')
        Audit = pool.get('account.dunning.audit')
        # The level charging the fee, not the one the line sits at: a line
        # that jumped levels is charged the fee of one it passed.
        levels = {l.id: l for l in Level.browse(
                sorted({a.level_id for a in actions}))}
        fees, entries = [], []
        for action in actions:
            level = levels[action.level_id]
            dunnings = Dunning.browse([dunning_of[l] for l in action.line_ids])
            amount = 0
            for dunning in dunnings:
                fee = FeeDunningLevel(dunning=dunning, level=level)
                fee.amount, fee.currency = level.fee.get_amount(dunning)
                fees.append(fee)
                amount += fee.amount
            entries.append(Audit.entry(FEE + '_posted',
                    party=action.party_id, level=action.level_id,
                    lines=action.line_ids, amount=amount, date=run.date))
        FeeDunningLevel.save(fees)
        FeeDunningLevel.process(fees)
        Audit.record(entries)

    @classmethod
    def _apply_interest(cls, run, actions, details, dunning_of, context):
        pool = Pool()
        Move = pool.get('account.move')
        Line = pool.get('account.move.line')
        Period = pool.get('account.period')
        Level = pool.get('account.dunning.level')
        Audit = pool.get('account.dunning.audit')
        period = Period.find(run.company, date=run.date)
        moves = []
        for action in actions:
            procedure = Level(action.level_id).procedure
            first = details['lines'][action.line_ids[0]]
            move = Move(
                company=run.company, journal=procedure.interest_journal,
                period=period, date=run.date,
                description=gettext('dunning_advanced.msg_interest_move'))
            move.lines = [
                Line(account=first['account'], party=action.party_id,
                    debit=action.amount, credit=0, maturity_date=run.date),
                Line(account=procedure.interest_account, debit=0,
                    credit=action.amount,
                    party=(action.party_id
                        if procedure.interest_account.party_required
                        else None)),
                ]
            moves.append(move)
        Move.save(moves)
        Move.post(moves)
        Audit.record([Audit.entry(INTEREST + '_posted',
                    party=a.party_id, level=a.level_id, lines=a.line_ids,
                    amount=a.amount, date=run.date,
                    reason=' '.join(f'{l}:{v}' for l, v in a.amounts))
                for a in actions])

    @classmethod
    def _set_blocked(cls, run, actions, blocked, kind):
        pool = Pool()
        Party = pool.get('party.party')
        Audit = pool.get('account.dunning.audit')
        party = Party.__table__()
        cursor = Transaction().connection.cursor()
        party_ids = sorted({a.party_id for a in actions})
        cursor.execute(*party.update(
                [party.dunning_ordering_blocked], [Literal(blocked)],
                where=in_(party.id, party_ids)))
        Audit.record([Audit.entry(kind, party=a.party_id,
                    level=a.level_id, lines=a.line_ids, date=run.date)
                for a in actions])

    @classmethod
    def _apply_block_ordering(cls, run, actions, details, dunning_of,
            context):
        cls._set_blocked(run, actions, True, 'ordering_blocked')

    @classmethod
    def _apply_unblock_ordering(cls, run, actions, details, dunning_of,
            context):
        cls._set_blocked(run, actions, False, 'ordering_unblocked')

    @classmethod
    def _apply_collection(cls, run, actions, details, dunning_of, context):
        """Hand the lines over: a party has one open case, which the lines
        join when it has one; the agency follows one debtor in one file."""
        pool = Pool()
        Collection = pool.get('account.dunning.collection')
        Audit = pool.get('account.dunning.audit')
        lines = details['lines']
        dunnings, amounts, levels = defaultdict(list), defaultdict(Decimal), {}
        for action in actions:
            dunnings[action.party_id].extend(
                dunning_of.get(l) or lines[l]['dunning']
                for l in action.line_ids)
            amounts[action.party_id] += action.amount
            levels.setdefault(action.party_id, action.level_id)
        open_cases = {}
        for case in Collection.search([
                    ('company', '=', run.company.id),
                    ('party', 'in', sorted(dunnings)),
                    ('state', '=', 'open'),
                    ], order=[('date', 'ASC'), ('id', 'ASC')]):
            open_cases.setdefault(case.party.id, case)
        Collection.save([Collection(company=run.company, party=party_id,
                    date=run.date, amount=amounts[party_id],
                    level=levels[party_id], dunnings=dunnings[party_id])
                for party_id in sorted(dunnings)
                if party_id not in open_cases])
        joined = []
        for party_id, case in open_cases.items():
            joined.extend(([case], {
                        'amount': case.amount + amounts[party_id],
                        'dunnings': [('add', dunnings[party_id])],
                        }))
        if joined:
            Collection.write(*joined)
        Audit.record([Audit.entry(COLLECTION, party=a.party_id,
                    level=a.level_id, lines=a.line_ids, amount=a.amount,
                    date=run.date)
                for a in actions])

    @classmethod
    def _create_tasks(cls, run, actions, kind):
        pool = Pool()
        Task = pool.get('account.dunning.task')
        Audit = pool.get('account.dunning.audit')
        tasks = [Task(company=run.company, party=a.party_id, kind=kind,
                date=run.date, level=a.level_id, amount=a.amount)
            for a in actions]
        Task.save(tasks)
        Audit.record([Audit.entry('task_created', party=a.party_id,
                    level=a.level_id, lines=a.line_ids, date=run.date,
                    reason=kind)
                for a in actions])

    @classmethod
    def _apply_call_task(cls, run, actions, details, dunning_of, context):
        cls._create_tasks(run, actions, CALL_TASK)

    @classmethod
    def _apply_no_contact_task(cls, run, actions, details, dunning_of,
            context):
        cls._create_tasks(run, actions, NO_CONTACT_TASK)


class FeeDunningLevel(metaclass=PoolMeta):
    __name__ = 'account.dunning.fee.dunning_level'

    def get_move_process(self):
        "Date the fee on the run's date, not on the day it is processed"
        move = super().get_move_process()
        date = Transaction().context.get('dunning_date')
        if date:
            pool = Pool()
            Period = pool.get('account.period')
            move.date = date
            move.period = Period.find(move.company, date=date)
        return move


class Collection(Workflow, ModelSQL, ModelView):
    "Collection Case"
    __name__ = 'account.dunning.collection'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    date = fields.Date("Handed over on", readonly=True)
    level = fields.Many2One('account.dunning.level', "Level", readonly=True)
    amount = fields.Numeric("Amount", digits=(16, 2), readonly=True)
    dunnings = fields.Many2Many(
        'account.dunning.collection-account.dunning', 'collection',
        'dunning', "Dunnings", readonly=True)
    agency = fields.Char("Agency",
        states={'readonly': Eval('state') != 'open'})
    note = fields.Text("Note")
    state = fields.Selection([
            ('open', "Handed over"),
            ('recovered', "Recovered"),
            ('closed', "Closed"),
            ], "State", readonly=True, sort=False)
    csv_file = fields.Function(
        fields.Binary("Case File", filename='csv_filename'), 'get_csv')
    csv_filename = fields.Function(
        fields.Char("Case File Name"), 'get_csv_filename')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]
        cls._transitions |= {('open', 'recovered'), ('open', 'closed')}
        cls._buttons.update({
                'recover': {'invisible': Eval('state') != 'open',
                    'depends': ['state']},
                'close': {'invisible': Eval('state') != 'open',
                    'depends': ['state']},
                })

    @classmethod
    def default_state(cls):
        return 'open'

    @classmethod
    @ModelView.button
    @Workflow.transition('recovered')
    def recover(cls, cases):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('closed')
    def close(cls, cases):
        pass

    def get_csv_filename(self, name):
        return f'collection-{self.party.code or self.party.id}-{self.date}.csv'

    def get_csv(self, name):
        "The case as the agency reads it: debtor, then one row per invoice"
        out = io.StringIO()
        writer = csv.writer(out)
        party = self.party
        address = party.address_get()
        writer.writerow(['debtor', 'code', 'address', 'email', 'phone',
                'invoice', 'invoice_date', 'due_date', 'amount_due',
                'currency', 'level', 'handed_over'])
        for dunning in self.dunnings:
            line = dunning.line
            origin = line.move.origin
            writer.writerow([party.name, party.code,
                    address.full_address.replace('\n', ', ')
                    if address else '',
                    party.email or '', party.phone or '',
                    getattr(origin, 'number', None) or line.move.rec_name,
                    getattr(origin, 'invoice_date', None) or line.move.date,
                    line.maturity_date, dunning.amount,
                    self.company.currency.code, dunning.level.rec_name,
                    self.date])
        return out.getvalue().encode('utf-8')


class CollectionDunning(ModelSQL):
    "Collection Case - Dunning"
    __name__ = 'account.dunning.collection-account.dunning'
    collection = fields.Many2One(
        'account.dunning.collection', "Collection", required=True,
        ondelete='CASCADE')
    dunning = fields.Many2One(
        'account.dunning', "Dunning", required=True, ondelete='CASCADE')


class Task(Workflow, ModelSQL, ModelView):
    "Dunning Task"
    __name__ = 'account.dunning.task'
    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    kind = fields.Selection([
            (CALL_TASK, "Call the customer"),
            (NO_CONTACT_TASK, "Find a contact (no email address)"),
            ], "Kind", readonly=True)
    kind_string = kind.translated('kind')
    date = fields.Date("Date", readonly=True)
    level = fields.Many2One('account.dunning.level', "Level", readonly=True)
    amount = fields.Numeric("Amount", digits=(16, 2), readonly=True)
    user = fields.Many2One('res.user', "Assigned to")
    note = fields.Text("Note")
    state = fields.Selection([
            ('open', "Open"),
            ('done', "Done"),
            ], "State", readonly=True, sort=False)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('state', 'DESC'), ('date', 'ASC'), ('id', 'ASC')]
        cls._transitions |= {('open', 'done'), ('done', 'open')}
        cls._buttons.update({
                'do': {'invisible': Eval('state') != 'open',
                    'depends': ['state']},
                'reopen': {'invisible': Eval('state') != 'done',
                    'depends': ['state']},
                })

    @classmethod
    def default_state(cls):
        return 'open'

    def get_rec_name(self, name):
        return f'{self.kind_string} - {self.party.rec_name}'

    @classmethod
    @ModelView.button
    @Workflow.transition('done')
    def do(cls, tasks):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('open')
    def reopen(cls, tasks):
        pass

