"""What each level does, as the accountant and the customer see it."""
import csv
import datetime as dt
import io
import re
from decimal import Decimal

from proteus import Model, Wizard

from conftest import YEAR, body_of, make_customer, make_invoice, run_dunning

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)


def day(offset):
    return DUE + dt.timedelta(days=offset)


def test_interest_posted_to_the_cent(tryton, mailbox):
    accounts = tryton['accounts']
    Journal = Model.get('account.journal')
    procedure = tryton['procedure']
    procedure.interest_journal, = Journal.find([('code', '=', 'REV')])
    procedure.interest_account = accounts['revenue']
    firm, = [l for l in procedure.levels if l.offset_days == 10]
    firm.interest_rate = Decimal('0.08')
    procedure.save()

    party = make_customer("Atelier Martin", 'atelier@martin.example')
    make_invoice(tryton, party, '1234.56', INVOICE_DATE)
    run_dunning(day(10))

    # 1234.56 x 8 % x 10 / 365 = 2.7058... -> 2.71
    party.reload()
    assert party.receivable == Decimal('1237.27')
    Audit = Model.get('account.dunning.audit')
    entry, = Audit.find([('kind', '=', 'interest_posted')])
    assert entry.amount == Decimal('2.71')
    Move = Model.get('account.move')
    move, = Move.find([('description', '=', "Late-payment interest")])
    assert move.state == 'posted' and move.date == day(10)


def test_collection_case_and_csv(tryton, mailbox):
    party = make_customer("Fleet Services Ltd", 'ap@fleet.example')
    invoice = make_invoice(tryton, party, '980.00', INVOICE_DATE)
    run_dunning(day(45))

    assert len(mailbox.messages) == 1, "one message, not one per level"
    assert "collection" in mailbox.messages[0]['Subject']
    Collection = Model.get('account.dunning.collection')
    case, = Collection.find([])
    assert case.party == party and case.amount == Decimal('980.00')
    rows = list(csv.DictReader(io.StringIO(case.csv_file.decode())))
    assert [(r['invoice'], r['amount_due'], r['due_date']) for r in rows] == [
        (invoice.number, '980.00', DUE.isoformat())]
    Message = Model.get('account.dunning.message')
    assert {m.channel for m in Message.find([])} == {'email', 'letter'}


def test_no_email_gets_letter_and_task(tryton, mailbox):
    party = make_customer("Garage du Port")
    make_invoice(tryton, party, '300.00', INVOICE_DATE)
    run_dunning(day(3))
    Message = Model.get('account.dunning.message')
    letter, = Message.find([('party', '=', party.id)])
    assert letter.channel == 'letter' and letter.state == 'sent'
    Task = Model.get('account.dunning.task')
    task, = Task.find([('party', '=', party.id)])
    assert task.kind == 'no_contact_task'
    assert mailbox.messages == []


def test_french_customer_reads_french(tryton, mailbox):
    Lang = Model.get('ir.lang')
    french, = Lang.find([('code', '=', 'fr')])
    Lang.click([french], 'load_translations')

    party = make_customer(
        "Garage Dupont", 'compta@garage-dupont.example', lang='fr')
    make_invoice(tryton, party, '1500.00', INVOICE_DATE)
    run_dunning(day(3))
    email, = mailbox.messages
    assert email['Subject'].startswith("Paiement en retard")
    text = body_of(email)
    assert "Bonjour Garage Dupont" in text
    assert "Échéance" in text and "01.04.2026" in text
    assert re.search(r"Échu :\s+1\s500,00\s\$", text)
    assert re.search(r"À régler maintenant :\s+1\s500,00\s\$", text)


def test_dry_run_writes_nothing(tryton, mailbox):
    party = make_customer("Workshop 7", 'w7@workshop.example')
    make_invoice(tryton, party, '99.99', INVOICE_DATE)
    summary = run_dunning(day(3), dry_run=True)
    assert "1 lines would reach a new level, 1 messages" in summary
    assert "Workshop 7" in summary
    Dunning = Model.get('account.dunning')
    Message = Model.get('account.dunning.message')
    assert Dunning.find([]) == [] and Message.find([]) == []
    assert mailbox.messages == []


def test_dispute_stops_reminders_until_its_end(tryton, mailbox):
    party = make_customer("Atelier Leroy", 'leroy@atelier.example')
    make_invoice(tryton, party, '640.00', INVOICE_DATE)
    run_dunning(day(3))
    Dunning = Model.get('account.dunning')
    dunning, = Dunning.find([])
    dispute = Wizard('account.dunning.dispute', [dunning])
    dispute.form.reason = "Brake discs delivered damaged"
    dispute.form.until = day(15)
    dispute.execute('block')

    run_dunning(day(10))
    assert len(mailbox.messages) == 1, "no reminder while disputed"
    run_dunning(day(16))
    assert len(mailbox.messages) == 2, "the sequence resumes after the end"
    Audit = Model.get('account.dunning.audit')
    kinds = [e.kind for e in Audit.find([('party', '=', party.id)])]
    assert 'dispute' in kinds and 'dispute_lifted' in kinds


def receive_payment(tryton, party, amount, date):
    "A bank payment booked on the party's account, not yet allocated"
    Move = Model.get('account.move')
    Journal = Model.get('account.journal')
    accounts = tryton['accounts']
    move = Move(journal=Journal.find([('code', '=', 'CASH')])[0], date=date)
    move.lines.new(account=accounts['cash'], debit=Decimal(amount))
    move.lines.new(account=accounts['receivable'], party=party,
        credit=Decimal(amount))
    move.click('post')


def test_unallocated_payment_and_credit_note(tryton, mailbox):
    party = make_customer("Garage Bernard", 'bernard@garage.example')
    make_invoice(tryton, party, '500.00', INVOICE_DATE)
    receive_payment(tryton, party, '200.00', day(1))
    run_dunning(day(3))
    text = body_of(mailbox.messages[-1])
    assert re.search(r"^Overdue: +\$500\.00\s", text, re.M)
    assert re.search(r"^Credits in your favour: +-\$200\.00\s", text, re.M)
    assert re.search(r"^To pay now: +\$300\.00\s", text, re.M)

    Invoice = Model.get('account.invoice')
    credit_note = Invoice(type='out')
    credit_note.party = party
    credit_note.invoice_date = day(4)
    line = credit_note.lines.new()
    line.product = tryton['product']
    line.quantity = -1
    line.unit_price = Decimal('300.00')
    credit_note.click('post')
    run_dunning(day(10))
    assert len(mailbox.messages) == 1, "the credits cover what is owed"


def test_opt_out_link(tryton, mailbox):
    from werkzeug.test import Client

    from trytond.wsgi import app
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    database = tryton['config'].database_name
    configuration.dunning_portal_url = f'http://localhost/{database}'
    configuration.save()
    party = make_customer("Garage Petit", 'petit@garage.example')
    make_invoice(tryton, party, '210.00', INVOICE_DATE)
    run_dunning(day(0))
    email, = mailbox.messages
    link = re.search(r'http://localhost(/\S+/dunning/opt-out/\S+)',
        body_of(email)).group(1)
    assert email['List-Unsubscribe-Post'] == 'List-Unsubscribe=One-Click'

    client = Client(app)
    forged = client.post(link[:-1] + ('0' if link[-1] != '0' else '1'))
    assert forged.status_code == 400
    assert "This link was changed after we sent it" in forged.get_data(
        as_text=True)
    assert "Traceback" not in forged.get_data(as_text=True)
    page = client.get(link)
    assert page.status_code == 200 and "Garage Petit" in page.get_data(
        as_text=True)
    party.reload()
    assert not party.dunning_email_opt_out, "a GET changes nothing"

    done = client.post(link)
    assert done.status_code == 200
    assert "will no longer receive" in done.get_data(as_text=True)
    party.reload()
    assert party.dunning_email_opt_out

    run_dunning(day(3))
    Message = Model.get('account.dunning.message')
    assert Message.find([('party', '=', party.id), ('date', '=', day(3))]
        ) == [], "nothing after the opt-out"
    run_dunning(day(21))
    assert len(mailbox.messages) == 1, "no email after the opt-out"
    letter, = Message.find([('party', '=', party.id), ('date', '=', day(21))])
    assert letter.channel == 'letter', "a formal notice still goes by letter"
