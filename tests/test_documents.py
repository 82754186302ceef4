"""The customer's documents as PDF: statement of account, invoices and
receipts, from the portal and from the accountant's client."""
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from proteus import Model, Report
from pypdf import PdfReader
from werkzeug.test import Client

from conftest import YEAR, make_customer, make_invoice, pay
from portal_support import make_portal_user, tryton_portal  # noqa: F401

from trytond.modules.dunning_portal.documents import (
    CREDIT_NOTE, INVOICE, PAYMENT, Movement, build_statement)


def d(month, day):
    return dt.date(YEAR, month, day)


def pdf_text(content):
    assert content[:5] == b'%PDF-', "a PDF document"
    reader = PdfReader(io.BytesIO(content))
    return '\n'.join(page.extract_text() for page in reader.pages)


def flat(text):
    "The text with each run of white space as one space"
    return ' '.join(text.split())


def main(response):
    "The page's own content, without the session's form tokens"
    return re.search(r'<main.*</main>', response.get_data(as_text=True),
        re.S).group(0)


def portal_client(config, user):
    "A werkzeug client of trytond's application logged in as user"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    from trytond.wsgi import app
    from trytond.modules.dunning_portal.portal import SESSION_COOKIE
    with Transaction().start(config.database_name, 0) as transaction:
        Session = Pool(config.database_name).get('web.user.session')
        key = Session.add(Pool(config.database_name).get('web.user')(
                user.id))
        transaction.commit()
    client = Client(app)
    client.set_cookie(SESSION_COOKIE, key, domain='localhost',
        path=f'/{config.database_name}/portal/')
    return client, f'/{config.database_name}/portal'


@pytest.fixture
def history(tryton_portal):
    """Garage Vidal's ledger: before March it owes INV-0 (120.00, due
    4 February, never paid) and 60.00 of INV-1 (100.00 paid 40.00)"""
    world = tryton_portal
    party = make_customer("Garage Vidal", 'compta@garage-vidal.example')
    other = make_customer("Garage Arnaud", 'arnaud@garage.example')
    # Numbers that cannot be mistaken for amounts in the PDF's text
    FiscalYear = Model.get('account.fiscalyear')
    for fiscalyear in FiscalYear.find([]):
        for sequences in fiscalyear.invoice_sequences:
            sequences.out_invoice_sequence.prefix = 'FAC-'
            sequences.out_invoice_sequence.save()
    invoices = {}
    # Invoices are numbered in the order of their dates.
    invoices[0] = make_invoice(world, party, '120.00', d(1, 5))
    invoices[1] = make_invoice(world, party, '100.00', d(2, 10))
    # March, the statement's period
    invoices[2] = make_invoice(world, party, '250.00', d(3, 5))
    invoices['other'] = make_invoice(world, other, '999.00', d(3, 10))
    invoices[3] = make_invoice(world, party, '80.00', d(3, 20), days=15)
    invoices['credit'] = make_invoice(world, party, '-30.00', d(3, 25))
    # April: after the period
    invoices[4] = make_invoice(world, party, '500.00', d(4, 10))
    pay(world, invoices[1], d(2, 25), '40.00')
    pay(world, invoices[1], d(3, 15), '60.00')
    pay(world, invoices['other'], d(3, 12), '333.00')
    pay(world, invoices[2], d(3, 28), '100.00')
    pay(world, invoices[3], d(4, 5))
    return world, party, other, invoices


def payment_lines(party):
    MoveLine = Model.get('account.move.line')
    return MoveLine.find([
            ('party', '=', party.id),
            ('account.type.receivable', '=', True),
            ('credit', '>', 0),
            ], order=[('date', 'ASC'), ('id', 'ASC')])


def test_statement_worked_example():
    "The docstring's example, row by row"
    april = d(4, 1), d(4, 30)
    statement = build_statement(*april, Decimal('100.00'), [
            Movement(d(4, 3), INVOICE, 'INV-2', Decimal('250.00'), d(5, 3)),
            Movement(d(4, 10), PAYMENT, 'PAY-1', Decimal('-100.00')),
            Movement(d(4, 20), CREDIT_NOTE, 'CN-1', Decimal('-20.00')),
            ], [
            (d(4, 3), INVOICE, 'INV-2', Decimal('250.00'), d(5, 3)),
            (d(4, 20), CREDIT_NOTE, 'CN-1', Decimal('-20.00'), None),
            (d(2, 1), INVOICE, 'INV-0', Decimal('45.00'), d(3, 1)),
            ])
    assert [r.balance for r in statement.rows] == [
        Decimal('350.00'), Decimal('250.00'), Decimal('230.00')]
    assert statement.closing == Decimal('230.00')
    assert [(i.reference, i.days_late, i.bucket)
        for i in statement.open_items] == [
        ('INV-0', 60, 'late_31_60'), ('CN-1', 0, 'not_due'),
        ('INV-2', 0, 'not_due')]
    assert dict(statement.aging) == {
        'not_due': Decimal('230.00'), 'late_1_30': 0,
        'late_31_60': Decimal('45.00'), 'late_61_90': 0,
        'late_over_90': 0}


def test_statement_figures(history):
    "The statement of March, to the cent, as the customer downloads it"
    world, party, other, invoices = history
    config = world['config']
    numbers = {k: i.number for k, i in invoices.items()}
    user = make_portal_user(party, 'compta@garage-vidal.example')
    client, root = portal_client(config, user)

    response = client.get(f'{root}/statement.pdf?from={YEAR}-03-01'
        f'&to={YEAR}-03-31')
    assert response.status_code == 200
    assert response.mimetype == 'application/pdf'
    assert (f'statement-{YEAR}-03-01-{YEAR}-03-31.pdf'
        in response.headers['Content-Disposition'])
    text = flat(pdf_text(response.data))

    assert "Statement of account" in text
    assert f"From 03/01/{YEAR} to 03/31/{YEAR}" in text
    assert "Garage Vidal 12 rue des Garages 69003 Lyon" in text
    assert "Garage Arnaud" not in text and numbers['other'] not in text
    assert "999.00" not in text and "333.00" not in text
    # 120.00 of INV-0 and the 60.00 left of INV-1
    assert f"03/01/{YEAR} Opening balance $180.00" in text
    assert (f"03/05/{YEAR} Invoice {numbers[2]} 04/04/{YEAR} $250.00 "
        "$430.00") in text
    assert re.search(rf"03/15/{YEAR} Payment \S+ {numbers[1]} \$60.00 "
        r"\$370.00", text), "the payment names the invoice it paid"
    assert (f"03/20/{YEAR} Invoice {numbers[3]} 04/04/{YEAR} $80.00 "
        "$450.00") in text
    assert (f"03/25/{YEAR} Credit note {numbers['credit']} 04/24/{YEAR} "
        "$30.00 $420.00") in text
    assert re.search(rf"03/28/{YEAR} Payment \S+ {numbers[2]} \$100.00 "
        r"\$320.00", text)
    assert f"03/31/{YEAR} Closing balance $320.00" in text
    assert numbers[4] not in text and "$500.00" not in text, (
        "April is after the period")

    # What was open on 31 March: INV-0 55 days late, INV-2 less its
    # partial payment, INV-3 paid in April, the credit note
    assert (f"Open items on 03/31/{YEAR} "
        "Document Reference Date Due date Days late Amount "
        f"Invoice {numbers[0]} 01/05/{YEAR} 02/04/{YEAR} 55 $120.00 "
        f"Invoice {numbers[2]} 03/05/{YEAR} 04/04/{YEAR} $150.00 "
        f"Invoice {numbers[3]} 03/20/{YEAR} 04/04/{YEAR} $80.00 "
        f"Credit note {numbers['credit']} 03/25/{YEAR} 04/24/{YEAR} "
        "-$30.00 Total open $320.00") in text
    assert (f"Aging on 03/31/{YEAR} Not due 1-30 days late "
        "31-60 days late 61-90 days late Over 90 days late "
        "$200.00 $0.00 $120.00 $0.00 $0.00") in text


def test_statement_from_the_client(history):
    """The accountant prints the same statement from the party: the wizard
    asks for the period"""
    from proteus import Wizard
    world, party, other, invoices = history
    wizard = Wizard('account.dunning.statement.print', [party])
    wizard.form.start = d(3, 1)
    wizard.form.end = d(3, 31)
    wizard.execute('print_')
    (extension, content, _, name), = wizard.actions
    assert extension == 'pdf'
    assert "Statement of Account" in name
    assert f"03/31/{YEAR} Closing balance $320.00" in flat(pdf_text(content))


def test_invoice_and_receipt(history):
    world, party, other, invoices = history
    config = world['config']
    user = make_portal_user(party, 'compta@garage-vidal.example')
    client, root = portal_client(config, user)
    invoice = invoices[2]

    response = client.get(f'{root}/invoices/{invoice.id}.pdf')
    assert response.status_code == 200
    assert response.mimetype == 'application/pdf'
    assert (f'invoice-{invoice.number}.pdf'
        in response.headers['Content-Disposition'])
    text = flat(pdf_text(response.data))
    assert f"Invoice {invoice.number}" in text
    assert "Brake pads set" in text
    assert "Total $250.00" in text
    assert "Still due $150.00" in text

    credit_note = invoices['credit'].lines_to_pay[0]
    first, second, last = [l for l in payment_lines(party)[1:5]
        if l != credit_note]
    assert (first.credit, second.credit, last.credit) == (
        Decimal('60.00'), Decimal('100.00'), Decimal('80.00'))
    # The payment history lists payments, each with a receipt that opens;
    # the credit note is with the invoices.
    page = client.get(f'{root}/payments').get_data(as_text=True)
    receipts = re.findall(r'payments/(\d+)/receipt\.pdf', page)
    assert str(second.id) in receipts
    assert str(credit_note.id) not in receipts
    assert all(client.get(f'{root}/payments/{line_id}/receipt.pdf')
        .status_code == 200 for line_id in receipts)

    response = client.get(f'{root}/payments/{second.id}/receipt.pdf')
    assert response.status_code == 200
    assert response.mimetype == 'application/pdf'
    text = flat(pdf_text(response.data))
    assert "Payment receipt" in text
    assert "We received $100.00 from Garage Vidal" in text
    assert invoice.number in text[text.index("What it paid"):]

    # The accountant prints the same receipt from the move line.
    MoveLine = Model.get('account.move.line')
    report = Report('account.dunning.receipt')
    extension, content, _, _ = report.execute([MoveLine(second.id)])
    assert extension == 'pdf'
    assert "We received $100.00" in flat(pdf_text(content))


def test_another_customers_documents(history):
    "Another customer's ids get the same 404 as ids that do not exist"
    world, party, other, invoices = history
    config = world['config']
    user = make_portal_user(party, 'compta@garage-vidal.example')
    client, root = portal_client(config, user)
    theirs, = payment_lines(other)
    mine = payment_lines(party)[0]
    invoice_line = invoices[2].lines_to_pay[0]
    draft = Model.get('account.invoice')(type='out', party=party)
    draft.save()

    missing = client.get(f'{root}/invoices/999999.pdf')
    assert missing.status_code == 404
    for path in [
            f'/invoices/{invoices["other"].id}.pdf',
            f'/invoices/{draft.id}.pdf',
            f'/payments/{theirs.id}/receipt.pdf',
            f'/payments/{invoice_line.id}/receipt.pdf',
            f'/payments/{invoices["credit"].lines_to_pay[0].id}/receipt.pdf',
            '/payments/999999/receipt.pdf',
            ]:
        response = client.get(root + path)
        assert response.status_code == 404, path
        assert main(response) == main(missing), path
    assert client.get(
        f'{root}/payments/{mine.id}/receipt.pdf').status_code == 200

    # The other customer's statement is their own, never this one's.
    other_user = make_portal_user(other, 'arnaud@garage.example')
    other_client, _ = portal_client(config, other_user)
    text = flat(pdf_text(other_client.get(
            f'{root}/statement.pdf?from={YEAR}-03-01&to={YEAR}-03-31').data))
    assert "Garage Arnaud" in text and "Garage Vidal" not in text
    assert "Closing balance $666.00" in text


BAD_PERIODS = [
    ('from=2026-03-01', 'The "to" date of the statement must be a date '
        'written as YYYY-MM-DD, not ""'),
    ('from=01/03/2026&to=2026-03-31', 'The "from" date of the statement '
        'must be a date written as YYYY-MM-DD, not "01/03/2026"'),
    ('from=2026-02-30&to=2026-03-31', 'not "2026-02-30"'),
    ('from=2026-04-01&to=2026-03-31', 'The statement cannot start on '
        '2026-04-01 after it ends on 2026-03-31'),
    ('from=1990-01-01&to=2026-03-31', 'at most 10 years'),
    ]


def test_statement_bad_dates(tryton_portal):  # noqa: F811
    party = make_customer("Garage Vidal", 'compta@garage-vidal.example')
    user = make_portal_user(party, 'compta@garage-vidal.example')
    client, root = portal_client(tryton_portal['config'], user)
    for query, message in BAD_PERIODS:
        response = client.get(f'{root}/statement.pdf?{query}')
        assert response.status_code == 400, query
        assert response.mimetype == 'text/html'
        assert message.replace('"', '&#34;') in response.get_data(
            as_text=True), query


def test_documents_need_a_login(tryton_portal):
    from trytond.wsgi import app
    client = Client(app)
    root = f'/{tryton_portal["config"].database_name}/portal'
    response = client.get(f'{root}/statement.pdf?from=2026-03-01'
        '&to=2026-03-31')
    assert response.status_code == 303
    assert '/portal/login' in response.headers['Location']
