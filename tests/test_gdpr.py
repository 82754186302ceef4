"""A customer's personal data: exported whole and only theirs, then erased
everywhere while the ledger stays as it was."""
import datetime as dt
import io
import json
import zipfile

import pytest
from proteus import Model, Wizard

from conftest import YEAR, body_of, make_customer, make_invoice, run_dunning

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)
# A Tuesday at the +10 level: reminders wait for office hours on weekends.
RUN_DATE = DUE + dt.timedelta(days=13)

NAME, EMAIL = "Garage Lefèvre", 'lefevre@garage-lefevre.example'
PHONE, PHONE_DIGITS = '+33 6 12 34 56 78', '612345678'
STREET = "3 chemin des Tilleuls"
OTHER_NAME, OTHER_EMAIL = "Carrosserie Blanc", 'blanc@carrosserie.example'
DISPUTE = "Mr Lefèvre says the brake pads of March were faulty"


def customer(name, email, phone, street):
    party = make_customer(name, email)
    address, = party.addresses
    address.street = street
    contact = party.contact_mechanisms.new(type='mobile')
    contact.value = phone
    party.save()
    return party


@pytest.fixture
def world(tryton, mailbox):
    party = customer(NAME, EMAIL, PHONE, STREET)
    other = customer(
        OTHER_NAME, OTHER_EMAIL, '+33 7 98 76 54 32', "9 quai Perrache")
    invoice = make_invoice(tryton, party, '480.00', INVOICE_DATE)
    make_invoice(tryton, other, '260.00', INVOICE_DATE)
    run_dunning(RUN_DATE)
    assert {m['To'].addresses[0].addr_spec for m in mailbox.messages} == {
        EMAIL, OTHER_EMAIL}
    assert any(NAME in body_of(m) for m in mailbox.messages)

    Dunning = Model.get('account.dunning')
    dunning, = Dunning.find([('party', '=', party.id)])
    dispute = Wizard('account.dunning.dispute', [dunning])
    dispute.form.reason = DISPUTE
    dispute.execute('block')
    party.dunning_sms_consent = False
    party.save()
    return dict(tryton, party=party, other=other, invoice=invoice)


def unzip(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode()
            for name in archive.namelist()}


def test_export_has_everything_of_the_party_and_nothing_else(world):
    config = world['config']
    party, other = world['party'], world['other']
    Party = Model.get('party.party')

    files = unzip(Party.dunning_personal_data_zip([party.id], config.context))
    data = json.loads(files['party.json'])
    assert data['party'][0]['name'] == NAME
    values = {c['value'] for c in data['contact_mechanisms']}
    assert EMAIL in values
    assert any(PHONE_DIGITS in v.replace(' ', '') for v in values)
    assert STREET in data['addresses'][0]['street_unstructured']
    assert [(c['channel'], c['state'], c['source'])
        for c in data['consents']] == [('sms', 'withdrawn', 'accountant')]
    segment, = data['segments']
    assert segment['reason'] and segment['overdue_amount'] == '480.00'
    assert data['disputes'][0]['block_reason'] == DISPUTE
    assert data['tasks'], "the call task of the +10 level"
    kinds = {a['kind'] for a in data['audit']}
    assert {'message_sent', 'dispute', 'consent_changed'} <= kinds
    assert DISPUTE in {a['reason'] for a in data['audit']}
    email, = [m for m in data['messages'] if m['channel'] == 'email']
    assert email['recipient'] == EMAIL and email['amount'] == '480.00'
    assert email['date'] == str(RUN_DATE)
    assert NAME in files[f"messages/{email['id']}.txt"]
    assert NAME in files[f"messages/{email['id']}.html"]
    assert files[f"messages/{email['id']}.txt"] == email['body']

    everything = '\n'.join(files.values())
    for text in [OTHER_NAME, OTHER_EMAIL, '798765432', "Perrache"]:
        assert text not in everything
    assert {a['party'] for a in data['audit']} == {party.id}
    assert other.id not in {m['party'] for m in data['messages']}

    # The same file from the party form.
    export = Wizard('party.dunning.personal_data.export', [party])
    assert export.form.filename == f'personal-data-{party.id}.zip'
    assert unzip(export.form.file)['party.json'] == files['party.json']


def test_erasure_everywhere_and_ledger_kept(world):
    party, other, invoice = world['party'], world['other'], world['invoice']
    config = world['config']
    Party = Model.get('party.party')
    Audit = Model.get('account.dunning.audit')
    needles = [NAME, 'Lefèvre', EMAIL, 'garage-lefevre', PHONE, PHONE_DIGITS,
        STREET]
    assert database_hits(config, needles), "the scan finds the data"
    ledger = ledger_of(party, other)
    audit = [(a.kind, a.amount, a.date, a.level, a.message)
        for a in Audit.find([('party', '=', party.id)])]

    Party.dunning_erase_personal_data([party.id], config.context)

    assert database_hits(config, needles) == []
    party.reload()
    assert party.name == f"Erased party {party.id}"
    assert ledger_of(party, other) == ledger
    invoice.reload()
    assert (invoice.total_amount, invoice.invoice_date, invoice.state) == (
        ledger['invoice'])
    erased, = Audit.find([
            ('party', '=', party.id),
            ('kind', '=', 'personal_data_erased')])
    assert erased.reason is None and erased.user.login == 'admin'
    assert [(a.kind, a.amount, a.date, a.level, a.message)
        for a in Audit.find([
                ('party', '=', party.id),
                ('kind', '!=', 'personal_data_erased')])] == audit, (
        "the facts of the audit are kept")

    other.reload()
    assert other.name == OTHER_NAME
    Message = Model.get('account.dunning.message')
    message, = Message.find(
        [('party', '=', other.id), ('channel', '=', 'email')])
    assert OTHER_NAME in message.body and message.recipient == OTHER_EMAIL


def test_only_the_dunning_group(world):
    from trytond.tests.tools import set_user
    party = world['party']
    User = Model.get('res.user')
    Group = Model.get('res.group')
    ModelData = Model.get('ir.model.data')
    clerk = User(name="Clerk", login='clerk')
    clerk.groups.append(Group(
            ModelData.get_id('account', 'group_account', {})))
    clerk.save()
    Party = Model.get('party.party')

    set_user(clerk)
    try:
        with pytest.raises(Exception, match='dunning_personal_data_zip'):
            Party.dunning_personal_data_zip([party.id], {})
        with pytest.raises(Exception, match='dunning_erase_personal_data'):
            Party.dunning_erase_personal_data([party.id], {})
        with pytest.raises(Exception):
            Wizard('party.dunning.personal_data.export', [Party(party.id)])
    finally:
        set_user(1)
    party.reload()
    assert party.name == NAME


def ledger_of(party, other):
    Line = Model.get('account.move.line')
    Invoice = Model.get('account.invoice')
    party.reload()
    other.reload()
    lines = Line.find([])
    invoice, = Invoice.find([('party', '=', party.id)])
    return {
        'receivable': (party.receivable, other.receivable),
        'totals': (sum(l.debit for l in lines), sum(l.credit for l in lines),
            len(lines)),
        'party_lines': sorted((l.debit, l.credit, l.maturity_date)
            for l in lines if l.party == party),
        'invoice': (invoice.total_amount, invoice.invoice_date,
            invoice.state),
        }


def database_hits(config, needles):
    """Every (table, column, needle) of the database whose text holds a
    needle, whatever the case"""
    from sql import Cast, Table
    from sql.functions import Lower

    from trytond import backend
    from trytond.transaction import Transaction
    with Transaction().start(
            config.database_name, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        if backend.name == 'sqlite':
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")
            columns = []
            for table, in cursor.fetchall():
                cursor.execute(f'PRAGMA table_info("{table}")')
                columns.extend((table, column)
                    for _, column, type_, *_ in cursor.fetchall()
                    if 'BLOB' not in type_.upper())
        else:
            cursor.execute("SELECT table_name, column_name "
                "FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN ("
                "'text', 'character varying', 'character', 'json', 'jsonb')")
            columns = cursor.fetchall()
        hits = []
        for table_name, column_name in columns:
            table = Table(table_name)
            column = getattr(table, column_name)
            for needle in needles:
                cursor.execute(*table.select(column, limit=1,
                        where=Lower(Cast(column, 'TEXT')).like(
                            f'%{needle.lower()}%')))
                if cursor.fetchone():
                    hits.append((table_name, column_name, needle))
        return hits
