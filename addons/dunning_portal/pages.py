"""The customer's pages: balance and open invoices, paid invoices, payment
history, statements, contact preferences and disputes.

Every page reads the customer's records in a few set-based queries, never
one per invoice: the balance page serves many customers at once.
"""
import datetime as dt
import hashlib
from collections import defaultdict
from decimal import Decimal
from http import HTTPStatus

from sql import Literal, Null, Union
from sql.aggregate import Max
from werkzeug.exceptions import NotFound
from werkzeug.utils import send_from_directory

from trytond import backend, config
from trytond.exceptions import UserError
from trytond.protocols.wrappers import Response
from trytond.transaction import Transaction
from trytond.wsgi import app

from .invoice import REASON_MAX
from .portal import STATIC, route

CHANNELS = ('email', 'sms', 'portal')
PAID_LIMIT = 200
STATIC_TYPES = {
    '.css': 'text/css; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.svg': 'image/svg+xml',
    '.png': 'image/png',
    }


@app.route('/<database_name>/portal/static/<name>', methods={'GET'})
def static(request, database_name, name):
    """The portal's stylesheet and script, cached a year: their URLs carry
    a digest of their content (`Portal.static`)"""
    suffix = '.' + name.rpartition('.')[2]
    if suffix not in STATIC_TYPES:
        raise NotFound()
    response = send_from_directory(
        STATIC, name, request.environ, mimetype=STATIC_TYPES[suffix],
        max_age=365 * 24 * 60 * 60)
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


def today(pool):
    return pool.get('ir.date').today()


def open_invoices(pool, portal):
    """The customer's posted invoices with something left to pay, oldest
    due first, each a dict: id, number, invoice_date, maturity_date,
    amount (left to pay, in the invoice's currency), currency, lines (its
    open receivable lines), days_late"""
    Invoice = pool.get('account.invoice')
    Currency = pool.get('currency.currency')
    invoice = Invoice.__table__()
    line = pool.get('account.move.line').__table__()
    relation = pool.get('account.invoice-account.move.line').__table__()
    additional = pool.get(
        'account.invoice-additional-account.move').__table__()
    cursor = Transaction().connection.cursor()
    date = today(pool)
    columns = [invoice.id, invoice.number, invoice.invoice_date,
        invoice.currency, line.id, line.maturity_date, line.debit,
        line.credit, line.second_currency, line.amount_second_currency]
    where = ((invoice.party == portal.party.id)
        & (invoice.company == portal.company.id)
        & (invoice.type == 'out')
        & (invoice.state == 'posted')
        & (line.reconciliation == Null))
    # A rescheduled invoice (a payment plan) owes the lines of its
    # additional moves, as Tryton's lines to pay.
    cursor.execute(*Union(
            invoice.join(line, condition=(line.move == invoice.move)
                & (line.account == invoice.account)).select(
                *columns, where=where),
            invoice.join(additional,
                condition=additional.invoice == invoice.id).join(line,
                condition=(line.move == additional.move)
                & (line.account == invoice.account)).select(
                *columns, where=where),
            all_=True))
    invoices = {}
    for (invoice_id, number, invoice_date, currency_id, line_id, maturity,
            debit, credit, second_currency, second_amount) in sorted(
                cursor, key=lambda r: (r[5] is None, r[5], r[0], r[4])):
        info = invoices.setdefault(invoice_id, {
                'id': invoice_id, 'number': number,
                'invoice_date': invoice_date, 'maturity_date': maturity,
                'amount': Decimal(0), 'currency': currency_id, 'lines': [],
                })
        info['lines'].append(line_id)
        info['amount'] += _amount(
            currency_id, debit, credit, second_currency, second_amount)
        if maturity and (not info['maturity_date']
                or maturity < info['maturity_date']):
            info['maturity_date'] = maturity
    if invoices:
        # Partial payments wait on the invoice until it is paid in full.
        cursor.execute(*relation.join(line,
                condition=line.id == relation.line).join(invoice,
                condition=invoice.id == relation.invoice).select(
                relation.invoice, invoice.currency, line.debit, line.credit,
                line.second_currency, line.amount_second_currency,
                where=relation.invoice.in_(list(invoices))
                & (line.reconciliation == Null)))
        for (invoice_id, currency_id, debit, credit, second_currency,
                second_amount) in cursor:
            invoices[invoice_id]['amount'] += _amount(
                currency_id, debit, credit, second_currency, second_amount)
    currencies = {c.id: c for c in Currency.browse(
            list({i['currency'] for i in invoices.values()}))}
    result = []
    for info in invoices.values():
        info['currency'] = currencies[info['currency']]
        info['amount'] = info['currency'].round(info['amount'])
        if info['amount'] <= 0:
            continue
        maturity = info['maturity_date']
        info['days_late'] = max(0, (date - maturity).days) if maturity else 0
        result.append(info)
    return result


def _amount(currency_id, debit, credit, second_currency, second_amount):
    "A line's amount in the invoice's currency, as Tryton reads it"
    if second_currency == currency_id and second_amount is not None:
        return Decimal(second_amount)
    return Decimal(debit) - Decimal(credit)


def invoice_statuses(pool, party, invoices):
    """Return {invoice id: status} of the open invoices (dicts of
    `open_invoices`), status 'open', 'overdue', 'disputed' or, with
    payment plans, 'plan'.

    The statuses come from ``account.invoice``'s ``portal_statuses``:
    modules that add one (payment plans) extend it there.
    """
    Invoice = pool.get('account.invoice')
    return Invoice.portal_statuses(party, invoices, today(pool))


def credits(pool, portal):
    """What the customer paid on account and is not yet allocated to an
    invoice, by currency"""
    line = pool.get('account.move.line').__table__()
    move = pool.get('account.move').__table__()
    account = pool.get('account.account').__table__()
    type_ = pool.get('account.account.type').__table__()
    relation = pool.get('account.invoice-account.move.line').__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*line
        .join(move, condition=move.id == line.move)
        .join(account, condition=account.id == line.account)
        .join(type_, condition=type_.id == account.type)
        .join(relation, 'LEFT', condition=relation.line == line.id)
        .select(line.debit, line.credit,
            where=(line.party == portal.party.id)
            & (account.company == portal.company.id)
            & (type_.receivable == Literal(True))
            & (move.state == 'posted')
            & (line.reconciliation == Null)
            & (line.credit > line.debit)
            & (relation.id == Null)))
    return portal.currency.round(sum(
            (Decimal(c) - Decimal(d) for d, c in cursor), Decimal(0)))


def discount_offers(pool, invoices):
    """{invoice id: (discount, amount to pay, deadline)} of the open
    invoices the customer may still pay with an early-payment discount"""
    Invoice = pool.get('account.invoice')
    return Invoice.early_discount_offers(
        [i['id'] for i in invoices], today(pool))


def balance_values(pool, portal):
    "What the balance page and its live fragment show"
    invoices = open_invoices(pool, portal)
    statuses = invoice_statuses(pool, portal.party, invoices)
    offers = discount_offers(pool, invoices)
    totals = defaultdict(Decimal)
    overdue = defaultdict(Decimal)
    for info in invoices:
        info['status'] = statuses[info['id']]
        if info['id'] in offers:
            discount, amount, deadline = offers[info['id']]
            info['discount'] = {
                'discount': discount, 'amount': amount, 'deadline': deadline}
        totals[info['currency']] += info['amount']
        if info['status'] == 'overdue':
            overdue[info['currency']] += info['amount']
    credit = credits(pool, portal)
    values = {
        'invoices': invoices,
        'totals': sorted(totals.items(), key=lambda t: t[0].code),
        'overdue': sorted(overdue.items(), key=lambda t: t[0].code),
        'credit': credit,
        'payable': any(i['status'] != 'disputed' for i in invoices),
        }
    values['fingerprint'] = fingerprint(invoices, credit)
    return values


def fingerprint(invoices, credit):
    "Changes whenever what the balance page shows changes"
    text = '|'.join(f"{i['id']}:{i['amount']}:{i['status']}"
        f":{bool(i.get('discount'))}"
        for i in sorted(invoices, key=lambda i: i['id']))
    return hashlib.sha256(f'{text}|{credit}'.encode()).hexdigest()[:16]


def balance_fingerprint(pool, portal):
    invoices = open_invoices(pool, portal)
    statuses = invoice_statuses(pool, portal.party, invoices)
    offers = discount_offers(pool, invoices)
    for info in invoices:
        info['status'] = statuses[info['id']]
        info['discount'] = info['id'] in offers
    return fingerprint(invoices, credits(pool, portal))


def collection_case(pool, portal):
    """The party's oldest open collection case: since when the account is
    with collections, and the agency if one is named"""
    Collection = pool.get('account.dunning.collection')
    cases = Collection.search([
            ('party', '=', portal.party.id),
            ('company', '=', portal.company.id),
            ('state', '=', 'open'),
            ], order=[('date', 'ASC'), ('id', 'ASC')], limit=1)
    return cases[0] if cases else None


@route('/')
def balance(request, pool, portal):
    "The notices stay until dismissed: reading one is no dismissal"
    Notice = pool.get('account.dunning.message')
    Configuration = pool.get('account.configuration')
    values = balance_values(pool, portal)
    return portal.render('balance.html',
        notices=Notice.portal_notices(portal.party),
        collection=collection_case(pool, portal),
        contact=Configuration(1).dunning_contact,
        statement=statement_defaults(pool), live=live_settings(portal),
        **values)


@route('/notices/<int:message_id>/dismiss', methods=('POST',))
def dismiss(request, pool, portal, message_id):
    Notice = pool.get('account.dunning.message')
    notices = Notice.search([
            ('id', '=', message_id),
            ('party', '=', portal.party.id),
            ('channel', '=', 'portal'),
            ], limit=1)
    if not notices:
        portal.not_found()
    Notice.portal_read([message_id])
    return portal.redirect()


@route('/balance.fragment')
def balance_fragment(request, pool, portal):
    "The totals and invoices of the balance page, swapped in place by JS"
    return portal.render('balance_fragment.html', **balance_values(
            pool, portal))


@route('/balance.json')
def balance_json(request, pool, portal):
    "What the page polls on databases without Tryton's bus"
    return Response(
        '{"fingerprint": "%s"}' % balance_fingerprint(pool, portal),
        content_type='application/json',
        headers={'Cache-Control': 'no-store'})


def live_settings(portal):
    "How the page learns of payments: the bus or periodic polls"
    bus = backend.name == 'postgresql'
    return {
        'mode': 'bus' if bus else 'poll',
        'url': portal.url('updates' if bus else 'balance.json'),
        'fragment': portal.url('balance.fragment'),
        'interval': config.getint(
            'dunning_portal', 'poll_interval', default=10) * 1000,
        }


def statement_defaults(pool):
    date = today(pool)
    return {'from': date.replace(month=1, day=1), 'to': date}


@route('/invoices/paid')
def paid_invoices(request, pool, portal):
    Invoice = pool.get('account.invoice')
    invoice = Invoice.__table__()
    line = pool.get('account.move.line').__table__()
    reconciliation = pool.get('account.move.reconciliation').__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*invoice
        .join(line, 'LEFT', condition=(line.move == invoice.move)
            & (line.account == invoice.account))
        .join(reconciliation, 'LEFT',
            condition=reconciliation.id == line.reconciliation)
        .select(invoice.id, Max(reconciliation.date),
            where=(invoice.party == portal.party.id)
            & (invoice.company == portal.company.id)
            & (invoice.type == 'out')
            & (invoice.state == 'paid'),
            group_by=[invoice.id, invoice.invoice_date],
            order_by=[invoice.invoice_date.desc, invoice.id.desc],
            limit=PAID_LIMIT))
    # SQLite answers an aggregate of dates as text.
    paid_on = {i: dt.date.fromisoformat(d) if isinstance(d, str) else d
        for i, d in cursor}
    invoices = Invoice.browse(list(paid_on))
    return portal.render('paid.html', invoices=[{
                'id': i.id, 'number': i.number,
                'invoice_date': i.invoice_date, 'total': i.total_amount,
                'currency': i.currency, 'paid_on': paid_on[i.id]}
            for i in invoices], limit=PAID_LIMIT)


def payment_lines(pool, portal, line_ids=None):
    """The customer's payments: credit lines of posted moves on receivable
    accounts, newest first; a credit note's own lines are an invoice, listed
    with the invoices"""
    Line = pool.get('account.move.line')
    line = Line.__table__()
    move = pool.get('account.move').__table__()
    invoice = pool.get('account.invoice').__table__()
    account = pool.get('account.account').__table__()
    type_ = pool.get('account.account.type').__table__()
    journal = pool.get('account.journal').__table__()
    cursor = Transaction().connection.cursor()
    where = ((line.party == portal.party.id)
        & (account.company == portal.company.id)
        & (type_.receivable == Literal(True))
        & (move.state == 'posted')
        & (line.credit > line.debit)
        & (invoice.id == Null))
    if line_ids is not None:
        where &= line.id.in_(line_ids)
    cursor.execute(*line
        .join(move, condition=move.id == line.move)
        .join(account, condition=account.id == line.account)
        .join(type_, condition=type_.id == account.type)
        .join(journal, condition=journal.id == move.journal)
        .join(invoice, 'LEFT', condition=invoice.move == line.move)
        .select(line.id, move.date, move.number, line.description,
            move.description, journal.id, line.debit, line.credit,
            line.reconciliation,
            where=where,
            order_by=[move.date.desc, line.id.desc]))
    rows = cursor.fetchall()
    Journal = pool.get('account.journal')
    journals = {j.id: j.rec_name for j in Journal.browse(
            list({r[5] for r in rows}))}
    return [{
            'id': line_id, 'date': date, 'number': number,
            'description': line_description or move_description or '',
            'journal': journals[journal_id],
            'amount': Decimal(credit) - Decimal(debit),
            'allocated': reconciliation is not None,
            } for (line_id, date, number, line_description,
                move_description, journal_id, debit, credit,
                reconciliation) in rows]


@route('/payments')
def payments(request, pool, portal):
    return portal.render('payments.html',
        payments=payment_lines(pool, portal),
        statement=statement_defaults(pool))


@route('/preferences', methods=('GET', 'POST'))
def preferences(request, pool, portal):
    "The channels the customer agrees to be reminded on"
    Consent = pool.get('account.dunning.consent')
    Run = pool.get('account.dunning.run')
    party = portal.party
    saved = False
    if request.method == 'POST':
        now = dt.datetime.now(dt.UTC)
        proof = (f"web user {portal.user.email or portal.user.id}; "
            f"address: {request.remote_addr}; "
            f"user agent: {request.user_agent.string}; "
            f"time: {now.isoformat(timespec='seconds')}")
        for channel in CHANNELS:
            Consent.set_consent([party], channel,
                request.form.get(channel) == 'on', 'form', proof=proof)
        saved = True
    withdrawn = Consent.withdrawn_channels([party.id]).get(party.id, ())
    recipients = Run.load_recipients(portal.company, [party.id]).get(
        party.id, {})
    return portal.render('preferences.html', saved=saved,
        channels=[{
                'name': channel,
                'granted': channel not in withdrawn,
                'recipient': recipients.get(channel),
                } for channel in CHANNELS])


def customer_invoice(pool, portal, invoice_id):
    "The customer's posted or paid invoice, else the same 404 as none"
    Invoice = pool.get('account.invoice')
    invoices = Invoice.search([
            ('id', '=', invoice_id),
            ('party', '=', portal.party.id),
            ('company', '=', portal.company.id),
            ('type', '=', 'out'),
            ('state', 'in', ['posted', 'paid']),
            ], limit=1)
    if not invoices:
        portal.not_found()
    return invoices[0]


@route('/invoices/<int:invoice_id>/dispute', methods=('GET', 'POST'))
def dispute(request, pool, portal, invoice_id):
    "Stop the reminders of an invoice the customer contests"
    Invoice = pool.get('account.invoice')
    invoice = customer_invoice(pool, portal, invoice_id)
    invoices = [i for i in open_invoices(pool, portal)
        if i['id'] == invoice.id]
    status = invoice_statuses(pool, portal.party, invoices).get(invoice.id)
    info = invoices[0] if invoices else None
    reason = (request.form.get('reason') or '').strip()
    error = None
    if request.method == 'POST':
        try:
            Invoice.portal_dispute(invoice, info, status, reason,
                portal.user)
        except UserError as exception:
            Transaction().rollback()
            error = exception.message
        else:
            return portal.render('dispute_done.html', invoice=invoice)
    return portal.render('dispute.html',
        status=HTTPStatus.BAD_REQUEST if error else HTTPStatus.OK,
        invoice=invoice, info=info, state=status, reason=reason,
        error=error, reason_max=REASON_MAX)


@route('/<path:rest>', methods=('GET', 'POST'), login=False)
def unknown(request, pool, portal, rest):
    """Any other address under the portal: a mistyped or cut link gets the
    portal's own page in the customer's language, not the server's"""
    portal.not_found()
