"""The portal in the customer's language, French or English: every page,
the statement PDF, notices until dismissed, the early-payment discount, the
collections status and the pages of bad links."""
import datetime as dt
import html
import io
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from proteus import Model
from pypdf import PdfReader
from werkzeug.test import Client

from conftest import YEAR, make_customer, make_invoice, run_dunning, signed
from portal_support import make_portal_user, tryton_portal  # noqa: F401
from test_portal import CSRF, log_in, post, text

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)
A4 = (595.28, 841.89)  # points
PAGES = ['', 'invoices/paid', 'payments', 'preferences', 'plans', 'plans/new',
    'plans/new?{invoices}&mode=instalments&count=2&frequency=month', 'pay']


@pytest.fixture
def client():
    from trytond.wsgi import app
    return Client(app)


@pytest.fixture
def root(tryton_portal):
    return f"/{quote(tryton_portal['config'].database_name, safe=':')}/portal/"


def in_transaction(config, func):
    "func(pool) in a transaction of its own, committed"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(config.database_name, 0,
            context=config.context) as transaction:
        result = func(Pool(config.database_name))
        transaction.commit()
    return result


def discount_term():
    PaymentTerm = Model.get('account.invoice.payment_term')
    term = PaymentTerm(name="2 % within 10 days, net 30")
    term.early_discount_rate = Decimal('0.02')
    term.early_discount_days = 10
    line = term.lines.new(type='remainder')
    line.relativedeltas.new(days=30)
    term.save()
    return term


@pytest.fixture
def dupont(tryton_portal):
    """Garage Dupont, a French customer with a portal login: a large invoice
    overdue since April, a paid one, and a recent one with an early-payment
    discount"""
    world = tryton_portal
    Lang = Model.get('ir.lang')
    Lang.click(Lang.find([('code', '=', 'fr')]), 'load_translations')
    Configuration = Model.get('account.configuration')
    Journal = Model.get('account.journal')
    configuration = Configuration(1)
    configuration.early_discount_account = world['accounts']['expense']
    configuration.early_discount_journal, = Journal.find(
        [('code', '=', 'MISC')])
    configuration.save()
    procedure = world['procedure']
    procedure.plan_allowed = True
    # Long overdue, Garage Dupont may still propose a plan.
    procedure.plan_segments = [
        k for k, _ in procedure._fields['plan_segments']['selection'] if k]
    procedure.save()
    party = make_customer("Garage Dupont", 'dupont@garage.example',
        lang='fr')
    overdue = make_invoice(world, party, '12345.67', INVOICE_DATE)
    Invoice = Model.get('account.invoice')
    recent = Invoice(type='out', party=party,
        invoice_date=dt.date.today() - dt.timedelta(days=2),
        payment_term=discount_term())
    line = recent.lines.new()
    line.product = world['product']
    line.quantity = 1
    line.unit_price = Decimal('1000.00')
    recent.click('post')
    make_portal_user(party, 'dupont@garage.example')
    return {'world': world, 'party': party, 'overdue': overdue,
        'recent': recent}


def set_lang(party, code):
    Lang = Model.get('ir.lang')
    party.lang, = Lang.find([('code', '=', code)])
    party.save()


def lang_date(code, date):
    "date as ir.lang writes it in the language"
    Lang = Model.get('ir.lang')
    lang, = Lang.find([('code', '=', code)])
    return date.strftime(lang.date)


def words(page):
    """The texts a person reads on the page, each a run of words: the
    visible text and the labels, without the scripts"""
    page = re.sub(r'<script.*?</script>', ' ', page, flags=re.S)
    attributes = re.findall(r'(?:aria-label|data-label)="([^"]*)"', page)
    texts = re.split(r'<[^>]+>', page) + attributes
    return {' '.join(html.unescape(t).split()) for t in texts} - {''}


def english_left(french, english):
    """The sentences and labels of the English page still on the French one,
    other than names, numbers and amounts"""
    english_words = words(english)
    return sorted(t for t in words(french) & english_words
        if re.search(r'[a-z]{3}', t)
        and not re.search(r'Garage|Dupont|Dunder Mifflin|@|\d', t)
        and t not in {'Date', 'Actions', 'Total', 'Instalments', 'Plan',
            'Email', 'Description', 'Reference', 'Document', 'Paid'}
        and t.lower() not in {'pdf'})


def test_pages_in_french_and_english(dupont, client, root):
    party = dupont['party']
    invoices = '&'.join(f'invoice={dupont[k].id}'
        for k in ['overdue', 'recent'])
    log_in(client, root, 'dupont@garage.example')
    pages = {}
    for code in ['fr', 'en']:
        set_lang(party, code)
        for path in PAGES:
            response = client.get(root + path.format(invoices=invoices))
            assert response.status_code == 200, (code, path, re.findall(
                    r'role="alert"[^>]*>(.*?)</', text(response), re.S))
            pages[code, path] = text(response)

    balance = pages['fr', '']
    assert '<html lang="fr">' in balance
    for french in ["Votre compte", "Total dû", "Factures à payer",
            "Échéance", "Jours de retard", "Contester", "Relevé de compte",
            "Se déconnecter", "Proposer un échéancier"]:
        assert french in balance, french
    assert re.search(r'>12\s345,67\s\$<', balance), (
        "French grouping, decimal comma, symbol after")
    assert f">{lang_date('fr', DUE)}<" in balance
    assert '12,345.67' not in balance
    for path in PAGES:
        left = english_left(pages['fr', path], pages['en', path])
        assert not left, (path, left)

    english = pages['en', '']
    assert '<html lang="en">' in english
    assert "Your account" in english and "Open invoices" in english
    assert '$12,345.67' in english
    assert f">{lang_date('en', DUE)}<" in english
    assert "Votre compte" not in english

    schedule = pages['fr', PAGES[-2]]
    assert "Votre échéancier" in schedule and "Accepter cet échéancier" in (
        schedule)
    assert "bénéficie encore d'un escompte" in html.unescape(schedule)
    assert re.search(r'\d\s\d{3},\d\d\s\$', schedule), (
        "the instalments in French")



def test_dates_as_the_customers_country_writes_them(dupont, client, root):
    "A French speaker in France reads 01/04, as the reminders write it"
    Country = Model.get('country.country')
    france = Country(name="France", code='FR')
    france.save()
    party = dupont['party']
    set_lang(party, 'fr')
    address, = party.addresses
    address.country = france
    address.save()
    log_in(client, root, 'dupont@garage.example')
    balance = text(client.get(root))
    assert '<html lang="fr-FR">' in balance
    assert f">{DUE.strftime('%d/%m/%Y')}<" in balance
    assert "Votre compte" in balance, "the words stay French"


def test_logged_out_pages_follow_the_browser(dupont, client, root):
    french = {'Accept-Language': 'fr-FR,fr;q=0.9,en;q=0.5'}
    login = client.get(root + 'login', headers=french)
    assert '<html lang="fr">' in text(login)
    assert "Connexion à votre compte" in text(login)
    login = client.get(root + 'login', headers={'Accept-Language': 'de'})
    assert '<html lang="en">' in text(login)
    assert "Log in to your account" in text(login)
    wrong = client.post(root + 'login', headers=french, data={
            'csrf_token': CSRF.search(text(login)).group(1),
            'email': 'dupont@garage.example', 'password': 'not-it'})
    assert wrong.status_code == 401
    assert "ne correspondent à aucun compte" in text(wrong)


def pdf_of(response):
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.data))
    return reader, ' '.join(
        '\n'.join(p.extract_text() for p in reader.pages).split())


def test_statement_pdf_fits_a4_in_both_languages(dupont, client, root):
    party = dupont['party']
    log_in(client, root, 'dupont@garage.example')
    path = (f'statement.pdf?from={YEAR - 1}-01-01'
        f'&to={dt.date.today().isoformat()}')
    response = client.get(root + path)
    reader, french = pdf_of(response)
    folder = Path(__file__).parent.parent / 'var' / 'screenshots'
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'statement-fr.pdf').write_bytes(response.data)
    for page in reader.pages:
        width, height = (float(v) for v in page.mediabox.upper_right)
        assert (round(width, 1), round(height, 1)) == (
            round(A4[0], 1), round(A4[1], 1)), "A4 portrait"
    assert "Relevé de compte" in french and "Solde de clôture" in french
    for column in ["Date", "Document", "Référence", "Échéance", "Débit",
            "Crédit", "Solde"]:
        assert column in french, column
    # The last row's balance is the closing balance: 12 345,67 + 1 000,00
    assert re.search(r"Facture \S+ \S+ 1\s000,00\s\$ 13\s345,67\s\$",
        french), french
    assert re.search(r"Solde de clôture 13\s345,67\s\$", french)

    set_lang(party, 'en')
    reader, english = pdf_of(client.get(root + path))
    assert "Statement of account" in english
    assert re.search(r"\$1,000.00 \$13,345.67", english)
    assert "Closing balance $13,345.67" in english


def test_notice_stays_until_dismissed(dupont, client, root):
    party = dupont['party']
    run_dunning(DUE + dt.timedelta(days=10))
    Message = Model.get('account.dunning.message')
    notice, = Message.find([
            ('party', '=', party.id), ('channel', '=', 'portal')])
    log_in(client, root, 'dupont@garage.example')
    for visit in range(2):
        page = text(client.get(root))
        assert f'data-notice="{notice.id}"' in page, "shown on each visit"
        assert "Masquer" in page
    notice.reload()
    assert not notice.portal_read_at, "seeing a notice is no dismissal"
    refused = client.post(root + f'notices/{notice.id}/dismiss')
    assert refused.status_code == 400, "no dismissal without the form"
    assert f'data-notice="{notice.id}"' in text(client.get(root))

    dismissed = post(client, root, f'notices/{notice.id}/dismiss', form='')
    assert dismissed.status_code == 303
    notice.reload()
    assert notice.portal_read_at
    assert 'data-notice' not in text(client.get(root)), "gone once dismissed"


def test_discount_shown_with_amount_and_deadline(dupont, client, root):
    party, recent = dupont['party'], dupont['recent']
    log_in(client, root, 'dupont@garage.example')
    deadline = recent.invoice_date + dt.timedelta(days=10)
    page = text(client.get(root))
    offer = re.search(
        rf'<p class="note" data-discount="{recent.id}">(.*?)</p>',
        page, re.S).group(1)
    offer = html.unescape(' '.join(offer.split()))
    assert recent.number in offer
    assert re.search(r"payez 980,00\s\$ au plus tard le "
        + re.escape(lang_date('fr', deadline))
        + r" au lieu de 1\s000,00\s\$ et économisez 20,00\s\$", offer), offer
    assert f'data-discount="{dupont["overdue"].id}"' not in page, (
        "no discount where the term has none")

    set_lang(party, 'en')
    page = html.unescape(text(client.get(root)))
    assert (f"pay $980.00 by {lang_date('en', deadline)} instead of "
        "$1,000.00 and save $20.00") in page


def test_collection_status(dupont, client, root):
    party = dupont['party']
    config = dupont['world']['config']
    log_in(client, root, 'dupont@garage.example')
    assert 'data-collection' not in text(client.get(root))

    handed_over = dt.date.today() - dt.timedelta(days=3)

    def hand_over(pool, agency=None):
        Collection = pool.get('account.dunning.collection')
        Company = pool.get('company.company')
        company, = Company.search([])
        case, = Collection.create([{'company': company.id,
                    'party': party.id, 'date': handed_over,
                    'amount': Decimal('12345.67'), 'agency': agency}])
        return case.id
    case_id = in_transaction(config, hand_over)
    page = html.unescape(' '.join(text(client.get(root)).split()))
    section = re.search(r'<section[^>]*data-collection>(.*?)</section>',
        page).group(1)
    assert "Votre dossier est au recouvrement" in section
    assert f"Depuis le {lang_date('fr', handed_over)}" in section
    assert "société de recouvrement" not in section, (
        "no agency named where none is set")
    assert "en payant la totalité du montant dû" in section
    assert "Claire, accounts, +33 1 23 45 67 89" in section
    assert 'href="%spay"' % root in section

    def name_agency(pool):
        Collection = pool.get('account.dunning.collection')
        Collection.write([Collection(case_id)],
            {'agency': "Recouvrement Rhône SA"})
    in_transaction(config, name_agency)
    set_lang(party, 'en')
    page = html.unescape(' '.join(text(client.get(root)).split()))
    assert "Your account is with collections" in page
    assert (f"Since {lang_date('en', handed_over)}, the collection agency "
        "Recouvrement Rhône SA handles") in page

    def close(pool):
        Collection = pool.get('account.dunning.collection')
        Collection.close([Collection(case_id)])
    in_transaction(config, close)
    assert 'data-collection' not in text(client.get(root)), (
        "a closed case is no status")


def test_bad_links_are_short_translated_pages(dupont, client, root):
    from trytond.modules.dunning_portal.web_user import sign_link
    party = dupont['party']
    config = dupont['world']['config']
    now = dt.datetime.now(dt.UTC)
    good = signed(config, sign_link, party.id, now + dt.timedelta(days=1))
    french = {'Accept-Language': 'fr'}
    links = {
        'login/' + signed(
            config, sign_link, party.id, now - dt.timedelta(hours=1)): (
            410, "Ce lien a expiré"),
        'login/' + good[:-1] + ('0' if good[-1] != '0' else '1'): (
            400, "Ce lien n'est pas valide"),
        'login/' + quote(good[:-1] + 'é'): (400, "Ce lien est incomplet"),
        'login/garbage': (400, "Ce lien est incomplet"),
        'survey/garbage': (400, "Le lien est incomplet"),
        f'invoices/{10 ** 12}.pdf': (404, "Cette page n'existe pas"),
        'invoices/mine.pdf': (404, "Cette page n'existe pas"),
        }
    for path, (status, message) in links.items():
        response = client.get(root + path, headers=french)
        assert response.status_code == status, path
        page = html.unescape(text(response))
        assert message in page, path
        assert '<html lang="fr">' in page
        assert 'Traceback' not in page and 'Error' not in page

    log_in(client, root, 'dupont@garage.example')
    for path in [f'invoices/{10 ** 12}.pdf', f'invoices/{10 ** 12}/dispute',
            f'payments/{10 ** 12}/receipt.pdf', 'plans/999999',
            f'plans/{10 ** 12}', f'pay/{10 ** 12}/done']:
        response = client.get(root + path)
        page = text(response)
        assert response.status_code == 404, path
        assert "Cette page n'existe pas" in html.unescape(page), path
        assert 'Traceback' not in page
    forged = post(client, root, f'notices/{10 ** 12}/dismiss', form='')
    assert forged.status_code == 404
    no_form = client.post(root + 'preferences', data={'email': 'on'})
    assert no_form.status_code == 400
    assert "Ce formulaire a expiré" in html.unescape(text(no_form))


def test_money_refuses_infinite_amounts():
    from trytond.modules.dunning_portal.portal import format_money

    class Lang:
        def currency(self, amount, currency, grouping):
            return f'{amount} {currency}'
    assert format_money(Lang(), Decimal('12.50'), '€') == '12.50 €'
    for amount in ['inf', '-Infinity', 'nan', 'sNaN']:
        with pytest.raises(ValueError):
            format_money(Lang(), Decimal(amount), '€')


def test_every_text_of_the_pages_has_its_french():
    "A text added to a template without its French fails here, not later"
    import polib
    from jinja2.ext import babel_extract
    from trytond.modules import dunning_portal
    folder = Path(dunning_portal.__file__).parent
    french = {(e.msgid, e.msgid_plural or None): e
        for e in polib.pofile(str(folder / 'locale' / 'fr.po'))
        if e.msgctxt == 'report:dunning_portal.portal:'
        and (e.msgstr or all(e.msgstr_plural.values()))}
    missing = []
    for template in sorted((folder / 'templates').glob('*.html')):
        with template.open('rb') as file:
            for _, _, message, _ in babel_extract(file, ['_', 'ngettext'],
                    [], {'trimmed': 'true', 'trim_blocks': 'true',
                        'lstrip_blocks': 'true'}):
                texts = [message] if isinstance(message, str) else [
                    m for m in message if m]
                key = (texts[0], texts[1] if len(texts) > 1 else None)
                if key not in french:
                    missing.append((template.name, key[0]))
    assert not missing
