"""The customer's documents as PDF: the statement of account for a period,
each invoice and a receipt for each payment.

They are Tryton reports (HTML templates in ``report/`` turned into PDF by
weasyprint), printed by accountants from the party, the invoice and the
move line, and downloaded by customers from the portal.
"""
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote

from genshi.core import Markup
from genshi.template import MarkupTemplate
from sql import Literal, Null
from sql.aggregate import Sum

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.modules.dunning_advanced.bulk import chunks, in_
from trytond.pool import Pool
from trytond.protocols.wrappers import Response
from trytond.pyson import Eval, If
from trytond.report import Report
from trytond.transaction import Transaction
from trytond.wizard import Button, StateReport, StateView, Wizard

from .portal import format_money, route

INVOICE, CREDIT_NOTE, PAYMENT, OTHER = (
    'invoice', 'credit_note', 'payment', 'other')
# (bucket, first day late, last day late): what the end date owes by age
AGING = (
    ('not_due', None, 0),
    ('late_1_30', 1, 30),
    ('late_31_60', 31, 60),
    ('late_61_90', 61, 90),
    ('late_over_90', 91, None),
    )
# The longest period a statement covers, a fence for the portal's server
MAX_STATEMENT_DAYS = 3660


@dataclass(frozen=True)
class Movement:
    "What one move changed on the customer's account"
    date: dt.date
    kind: str
    reference: str
    amount: Decimal
    due_date: dt.date | None = None
    description: str = ''


@dataclass(frozen=True)
class Row:
    "A movement of the period and the balance after it"
    movement: Movement
    balance: Decimal


@dataclass(frozen=True)
class OpenItem:
    "What was still open at the end date: an unpaid invoice, an unused credit"
    date: dt.date
    kind: str
    reference: str
    amount: Decimal
    due_date: dt.date | None
    days_late: int
    bucket: str


@dataclass(frozen=True)
class Statement:
    start: dt.date
    end: dt.date
    opening: Decimal
    rows: tuple
    closing: Decimal
    open_items: tuple
    aging: tuple


def build_statement(start, end, opening, movements, open_items):
    """The statement of start to end from the opening balance, the
    movements of the period and what was open at the end.

    Amounts are what the customer owes: invoices positive, payments and
    credit notes negative. A garage owes 100.00 on 1 April (INV-1, due
    31 March); in April it is invoiced 250.00 (INV-2, due 3 May), pays
    100.00 for INV-1 and gets a credit note of 20.00:

    >>> april = dt.date(2026, 4, 1), dt.date(2026, 4, 30)
    >>> statement = build_statement(*april, Decimal('100.00'), [
    ...     Movement(dt.date(2026, 4, 3), INVOICE, 'INV-2',
    ...         Decimal('250.00'), dt.date(2026, 5, 3)),
    ...     Movement(dt.date(2026, 4, 10), PAYMENT, 'PAY-1',
    ...         Decimal('-100.00')),
    ...     Movement(dt.date(2026, 4, 20), CREDIT_NOTE, 'CN-1',
    ...         Decimal('-20.00')),
    ...     ], [
    ...     (dt.date(2026, 4, 3), INVOICE, 'INV-2', Decimal('250.00'),
    ...         dt.date(2026, 5, 3)),
    ...     (dt.date(2026, 4, 20), CREDIT_NOTE, 'CN-1', Decimal('-20.00'),
    ...         None),
    ...     ])
    >>> [str(r.balance) for r in statement.rows]
    ['350.00', '250.00', '230.00']
    >>> statement.closing
    Decimal('230.00')
    >>> [(b, str(a)) for b, a in statement.aging if a]
    [('not_due', '230.00')]

    The closing balance is the opening plus the movements; it equals the
    sum of the open items when the ledger is consistent.
    """
    balance = opening
    rows = []
    for movement in sorted(movements, key=lambda m: m.date):
        balance += movement.amount
        rows.append(Row(movement, balance))
    items = []
    aging = dict.fromkeys((b for b, _, _ in AGING), Decimal(0))
    for date, kind, reference, amount, due_date in sorted(
            open_items, key=lambda i: (i[4] or i[0], i[0], i[2])):
        days_late = max((end - due_date).days, 0) if due_date else 0
        bucket = next(b for b, _, last in AGING
            if last is None or days_late <= last)
        aging[bucket] += amount
        items.append(OpenItem(date, kind, reference, amount, due_date,
                days_late, bucket))
    return Statement(start=start, end=end, opening=opening,
        rows=tuple(rows), closing=balance, open_items=tuple(items),
        aging=tuple(aging.items()))


def receivable_lines():
    """The receivable lines of posted moves as a query, with the move and
    the invoice whose move it is"""
    pool = Pool()
    line = pool.get('account.move.line').__table__()
    move = pool.get('account.move').__table__()
    account = pool.get('account.account').__table__()
    type_ = pool.get('account.account.type').__table__()
    invoice = pool.get('account.invoice').__table__()
    query = (line
        .join(move, condition=move.id == line.move)
        .join(account, condition=account.id == line.account)
        .join(type_, condition=type_.id == account.type)
        .join(invoice, 'LEFT', condition=invoice.move == line.move))
    where = ((type_.receivable == Literal(True))
        & (line.party != Null)
        & (move.state == 'posted'))
    return line, move, invoice, query, where


def paid_invoices(line_ids):
    """{payment line id: [(invoice id, number)]}: the invoices each payment
    line paid, in full (reconciled together) or in part (the invoice's
    payment lines)."""
    pool = Pool()
    line = pool.get('account.move.line').__table__()
    other = pool.get('account.move.line').__table__()
    invoice = pool.get('account.invoice').__table__()
    payment_line = pool.get('account.invoice-account.move.line').__table__()
    cursor = Transaction().connection.cursor()
    paid = defaultdict(set)
    for sub in chunks(line_ids):
        cursor.execute(*payment_line.join(invoice,
                condition=invoice.id == payment_line.invoice).select(
                payment_line.line, invoice.id, invoice.number,
                where=in_(payment_line.line, sub)))
        for line_id, invoice_id, number in cursor:
            paid[line_id].add((invoice_id, number))
        cursor.execute(*line.join(other,
                condition=(other.reconciliation == line.reconciliation)
                & (other.id != line.id)).join(invoice,
                condition=invoice.move == other.move).select(
                line.id, invoice.id, invoice.number,
                where=in_(line.id, sub) & (line.reconciliation != Null)))
        for line_id, invoice_id, number in cursor:
            paid[line_id].add((invoice_id, number))
    return {k: sorted(v, key=lambda i: (i[1] or '', i[0]))
        for k, v in paid.items()}


def kind_of(invoice_id, amount):
    if invoice_id:
        return INVOICE if amount >= 0 else CREDIT_NOTE
    return PAYMENT if amount < 0 else OTHER


def load_statements(company, party_ids, start, end):
    """{party id: Statement} of start to end, in a constant number of
    queries whatever the number of parties and lines"""
    pool = Pool()
    reconciliation = pool.get('account.move.reconciliation').__table__()
    cursor = Transaction().connection.cursor()
    line, move, invoice, query, where = receivable_lines()
    where &= (move.company == company.id) & (move.date <= end)

    openings = defaultdict(Decimal)
    movements = defaultdict(dict)
    open_rows = []
    query = query.join(reconciliation, 'LEFT',
        condition=reconciliation.id == line.reconciliation)
    open_at_end = (line.reconciliation == Null) | (reconciliation.date > end)
    for sub in chunks(party_ids):
        parties = in_(line.party, sub)
        cursor.execute(*query.select(
                line.party, Sum(line.debit - line.credit),
                where=where & parties & (move.date < start),
                group_by=[line.party]))
        for party_id, amount in cursor:
            # SQLite sums as a float: the currency's rounding makes it exact.
            openings[party_id] = company.currency.round(Decimal(str(amount)))
        # The period's lines and, before it, only those still open at the end
        cursor.execute(*query.select(
                line.id, line.party, move.id, move.date, move.number,
                move.description, line.debit, line.credit,
                line.maturity_date, invoice.id, invoice.number,
                reconciliation.date,
                where=where & parties & ((move.date >= start) | open_at_end),
                order_by=[move.date, move.id, line.id]))
        for (line_id, party_id, move_id, date, move_number, description,
                debit, credit, maturity, invoice_id, number,
                reconciled) in cursor:
            # Subtract in Python: SQLite would compute it as a float.
            amount = Decimal(debit) - Decimal(credit)
            if date >= start:
                movement = movements[party_id].setdefault(move_id, {
                        'date': date, 'invoice': invoice_id,
                        'reference': number or move_number or str(move_id),
                        'description': description or '',
                        'amount': Decimal(0), 'due_date': None,
                        'lines': []})
                movement['amount'] += amount
                movement['lines'].append(line_id)
                if maturity and (not movement['due_date']
                        or maturity < movement['due_date']):
                    movement['due_date'] = maturity
            if reconciled is None or reconciled > end:
                open_rows.append((line_id, party_id, date, amount, maturity,
                        invoice_id, number or move_number or str(move_id)))

    payment_ids = [l for p in movements.values() for m in p.values()
        if not m['invoice'] for l in m['lines']]
    payment_ids += [r[0] for r in open_rows if not r[5] and r[3] < 0]
    paid = paid_invoices(payment_ids)

    items = defaultdict(dict)
    for (line_id, party_id, date, amount, maturity, invoice_id,
            reference) in open_rows:
        target = None
        if not invoice_id and amount < 0:
            # A partial payment of an invoice lowers what it owes.
            target = next((('invoice', i) for i, _ in paid.get(line_id, [])
                    if ('invoice', i) in items[party_id]), None)
        if target:
            item = items[party_id][target]
            item['amount'] += amount
            continue
        key = ('invoice', invoice_id) if invoice_id else ('line', line_id)
        item = items[party_id].get(key)
        if item is None:
            items[party_id][key] = {
                'date': date, 'kind': kind_of(invoice_id, amount),
                'reference': reference, 'amount': amount,
                'due_date': maturity}
        else:
            item['amount'] += amount
            if maturity and (not item['due_date']
                    or maturity < item['due_date']):
                item['due_date'] = maturity

    statements = {}
    for party_id in party_ids:
        party_movements = []
        for move in movements[party_id].values():
            description = move['description']
            if not move['invoice']:
                numbers = sorted({n for l in move['lines']
                        for _, n in paid.get(l, []) if n})
                if numbers:
                    description = ', '.join(numbers)
            party_movements.append(Movement(move['date'],
                    kind_of(move['invoice'], move['amount']),
                    move['reference'], move['amount'], move['due_date'],
                    description))
        statements[party_id] = build_statement(start, end,
            openings[party_id], party_movements, [
                (i['date'], i['kind'], i['reference'], i['amount'],
                    i['due_date'])
                for i in items[party_id].values() if i['amount']])
    return statements


REPORTS = Path(__file__).parent / 'report'


@cache
def document_style():
    "The page, letterhead and tables of the three documents"
    return Markup((REPORTS / 'document.css').read_text())


@cache
def letterhead_template():
    path = REPORTS / 'letterhead.html'
    return MarkupTemplate(path.read_text(), filepath=str(path))


def letterhead(company, tax_identifier, party, address):
    "The company's heading over the addressee, as the three documents open"
    return letterhead_template().generate(company=company,
        tax_identifier=tax_identifier, party=party, address=address)


class DocumentReport(Report):
    """What the three documents share: the company, the language, money,
    the style and the letterhead"""

    @classmethod
    def get_context(cls, records, header, data):
        pool = Pool()
        Company = pool.get('company.company')
        Lang = pool.get('ir.lang')
        context = super().get_context(records, header, data)
        company_id = Transaction().context.get('company')
        company = Company(company_id) if company_id else None
        lang = Lang.get()
        context['company'] = company
        context['lang'] = lang
        context['money'] = lambda amount, lang=lang: format_money(
            lang, amount, company.currency)
        context['document_style'] = document_style()
        context['letterhead'] = letterhead
        return context


class StatementReport(DocumentReport):
    "Statement of Account"
    __name__ = 'account.dunning.statement'

    @classmethod
    def get_context(cls, records, header, data):
        context = super().get_context(records, header, data)
        start, end = statement_period(data)
        context['start'], context['end'] = start, end
        context['statements'] = load_statements(context['company'],
            [r.id for r in records], start, end)
        return context


class InvoiceReport(DocumentReport):
    "Customer Invoice"
    __name__ = 'account.dunning.invoice'

    @classmethod
    def get_context(cls, records, header, data):
        pool = Pool()
        Configuration = pool.get('account.configuration')
        context = super().get_context(records, header, data)
        context['payment_instructions'] = (
            Configuration(1).dunning_payment_instructions)
        context['price_digits'] = price_digits
        return context


class ReceiptReport(DocumentReport):
    "Payment Receipt"
    __name__ = 'account.dunning.receipt'

    @classmethod
    def get_context(cls, records, header, data):
        pool = Pool()
        Invoice = pool.get('account.invoice')
        context = super().get_context(records, header, data)
        paid = paid_invoices([r.id for r in records])
        invoices = Invoice.browse(sorted({i for p in paid.values()
                    for i, _ in p}))
        by_id = {i.id: i for i in invoices}
        context['paid'] = {line_id: [by_id[i] for i, _ in pairs]
            for line_id, pairs in paid.items()}
        return context


def price_digits(price, currency):
    "The digits of a unit price: the currency's, more if it has them"
    exponent = price.normalize().as_tuple().exponent if price else 0
    return max(currency.digits, -exponent)


def statement_period(data):
    "The dates of the statement's data, as the wizard and the portal give"
    start, end = data['start'], data['end']
    if isinstance(start, str):
        start, end = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return start, end


class StatementStart(ModelView):
    "Print Statement of Account"
    __name__ = 'account.dunning.statement.start'
    start = fields.Date("From", required=True,
        domain=[If(Eval('end'), ('start', '<=', Eval('end')), ())])
    end = fields.Date("To", required=True)

    @classmethod
    def default_start(cls):
        today = Pool().get('ir.date').today()
        return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)

    @classmethod
    def default_end(cls):
        return Pool().get('ir.date').today()


class PrintStatement(Wizard):
    "Print Statement of Account"
    __name__ = 'account.dunning.statement.print'
    start = StateView('account.dunning.statement.start',
        'dunning_portal.statement_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Print", 'print_', 'tryton-print', default=True),
            ])
    print_ = StateReport('account.dunning.statement')

    def do_print_(self, action):
        return action, {
            'ids': [r.id for r in self.records],
            'model': 'party.party',
            'start': self.start.start,
            'end': self.start.end,
            }


def pdf(report_name, ids, filename, data=None):
    "A report of the records as a PDF download"
    pool = Pool()
    Report = pool.get(report_name, type='report')
    _, content, _, _ = Report.execute(ids, data or {})
    return Response(bytes(content), status=HTTPStatus.OK,
        content_type='application/pdf', headers={
            'Content-Disposition': "attachment; filename*=UTF-8''"
            + quote(filename)})


def parse_period(args):
    """(start, end) of the portal's statement query, else raise ValueError
    with what is wrong"""
    values = {}
    for name in ('from', 'to'):
        text = args.get(name, '')
        try:
            values[name] = dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(gettext(
                    'dunning_portal.msg_statement_bad_date',
                    name=name, value=text))
    start, end = values['from'], values['to']
    if start > end:
        raise ValueError(gettext('dunning_portal.msg_statement_inverted',
                start=start.isoformat(), end=end.isoformat()))
    if (end - start).days > MAX_STATEMENT_DAYS:
        raise ValueError(gettext('dunning_portal.msg_statement_too_long',
                years=MAX_STATEMENT_DAYS // 366))
    return start, end


@route('/statement.pdf')
def statement_pdf(request, pool, portal):
    try:
        start, end = parse_period(request.args)
    except ValueError as exception:
        return portal.render('error.html', status=HTTPStatus.BAD_REQUEST,
            message=str(exception))
    return pdf('account.dunning.statement', [portal.party.id],
        f'statement-{start.isoformat()}-{end.isoformat()}.pdf',
        {'model': 'party.party', 'start': start, 'end': end})


@route('/invoices/<int:invoice_id>.pdf')
def invoice_pdf(request, pool, portal, invoice_id):
    Invoice = pool.get('account.invoice')
    invoices = Invoice.search([
            ('id', '=', invoice_id),
            ('type', '=', 'out'),
            ('party', '=', portal.party.id),
            ('company', '=', portal.company.id),
            ('state', 'in', ['posted', 'paid']),
            ])
    if not invoices:
        portal.not_found()
    invoice, = invoices
    return pdf('account.dunning.invoice', [invoice.id],
        f'invoice-{invoice.number}.pdf', {'model': 'account.invoice'})


@route('/payments/<int:line_id>/receipt.pdf')
def receipt_pdf(request, pool, portal, line_id):
    Line = pool.get('account.move.line')
    Invoice = pool.get('account.invoice')
    lines = Line.search([
            ('id', '=', line_id),
            ('party', '=', portal.party.id),
            ('account.type.receivable', '=', True),
            ('move.company', '=', portal.company.id),
            ('move.state', '=', 'posted'),
            ('credit', '>', 0),
            ])
    # A credit note's line is no payment: its document is the credit note.
    if not lines or Invoice.search([('move', '=', lines[0].move.id)]):
        portal.not_found()
    line, = lines
    return pdf('account.dunning.receipt', [line.id],
        f'receipt-{line.move.number or line.id}.pdf',
        {'model': 'account.move.line'})
