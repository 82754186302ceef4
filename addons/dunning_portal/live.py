"""The open balance page follows the ledger: a payment recorded for a party
(a card payment, an accountant's reconciliation) is published on Tryton's
bus, which the page long-polls on PostgreSQL; elsewhere the page polls."""
import json
from http import HTTPStatus

from sql import Null

from trytond import backend
from trytond.bus import Bus
from trytond.modules.dunning_advanced.bulk import chunks, in_
from trytond.pool import Pool, PoolMeta
from trytond.protocols.wrappers import Response, with_pool, with_transaction
from trytond.transaction import Transaction
from trytond.wsgi import app

from .pages import balance_fingerprint
from .portal import Portal, secure_headers


def channel(party_id):
    return f'dunning_portal:{party_id}'


def publish(party_ids):
    """Tell the open pages of the parties that their balance changed, once
    the transaction commits. Only PostgreSQL has the bus; elsewhere the
    pages poll and this does nothing."""
    if not Transaction().database.has_channel():
        return
    for party_id in sorted(set(filter(None, party_ids))):
        Bus.publish(channel(party_id), {'type': 'balance'})


def parties_of_lines(column, ids):
    "The parties of the move lines whose column is one of ids"
    pool = Pool()
    line = pool.get('account.move.line').__table__()
    cursor = Transaction().connection.cursor()
    party_ids = set()
    for sub in chunks(ids):
        cursor.execute(*line.select(line.party,
                where=in_(getattr(line, column), sub)
                & (line.party != Null),
                group_by=[line.party]))
        party_ids.update(p for p, in cursor)
    return party_ids


class Reconciliation(metaclass=PoolMeta):
    __name__ = 'account.move.reconciliation'

    @classmethod
    def create(cls, vlist):
        reconciliations = super().create(vlist)
        if Transaction().database.has_channel():
            publish(parties_of_lines(
                    'reconciliation', [r.id for r in reconciliations]))
        return reconciliations

    @classmethod
    def delete(cls, reconciliations):
        party_ids = set()
        if Transaction().database.has_channel():
            party_ids = parties_of_lines(
                'reconciliation', [r.id for r in reconciliations])
        super().delete(reconciliations)
        publish(party_ids)


class InvoicePaymentLine(metaclass=PoolMeta):
    "A partial payment added to an invoice lowers what is left to pay"
    __name__ = 'account.invoice-account.move.line'

    @classmethod
    def create(cls, vlist):
        records = super().create(vlist)
        publish_invoices([r.invoice.id for r in records])
        return records

    @classmethod
    def delete(cls, records):
        invoice_ids = [r.invoice.id for r in records]
        super().delete(records)
        publish_invoices(invoice_ids)


def publish_invoices(invoice_ids):
    pool = Pool()
    invoice = pool.get('account.invoice').__table__()
    cursor = Transaction().connection.cursor()
    if not Transaction().database.has_channel():
        return
    party_ids = []
    for sub in chunks(sorted(set(invoice_ids))):
        cursor.execute(*invoice.select(invoice.party,
                where=in_(invoice.id, sub), group_by=[invoice.party]))
        party_ids.extend(p for p, in cursor)
    publish(party_ids)


class Move(metaclass=PoolMeta):
    "A payment posted on account changes the customer's credit"
    __name__ = 'account.move'

    @classmethod
    def post(cls, moves):
        super().post(moves)
        if Transaction().database.has_channel():
            publish(parties_of_lines('move', [m.id for m in moves]))


@app.route('/<database_name>/portal/updates', methods={'GET'})
@with_pool
def updates(request, pool):
    """Wait for the logged-in party's next balance change on the bus, then
    answer the balance's fingerprint and the last message seen.

    An answer comes at once when the page's fingerprint (``fingerprint``)
    is no longer current; no transaction is held while waiting.
    """
    known = request.args.get('fingerprint')
    last = request.args.get('last') or None
    party_id, current = fingerprint(request, pool)
    if party_id is None:
        return json_response({'login': True}, HTTPStatus.UNAUTHORIZED)
    if current == known and backend.name == 'postgresql':
        answer = Bus.subscribe(
            pool.database_name, [channel(party_id)], last)
        if answer['message']:
            last = answer['message']['message_id']
            party_id, current = fingerprint(request, pool)
    return json_response({'fingerprint': current, 'last': last})


@with_transaction(readonly=True, context={'_check_access': False})
def fingerprint(request, pool):
    "(party id, balance fingerprint) of the request's session"
    portal = Portal(request, pool, pool.database_name)
    if not portal.user:
        return None, None
    with Transaction().set_context(company=portal.company.id):
        return portal.party.id, balance_fingerprint(pool, portal)


def json_response(data, status=HTTPStatus.OK):
    return secure_headers(Response(json.dumps(data), status=status,
            content_type='application/json'))
