"""The message corpus: every level of the shipped policy, on every channel
that has a text (email, SMS where the level has an SMS text, letter and
portal notice), in English and in French, for customers with and without a
late-payment fee, a credit, a collections agency, a payment plan and an
early-payment discount; each rendered as the customer reads it and checked
against the rules below. The corpus is written to var/message-corpus/ for a
person to read.

The customers owe three invoices: one due on M (the oldest), one due on
M + 20 and one due on M + 80. The reminder of each level is written on the
day the oldest invoice reaches it, with what the levels up to it did
already applied: orders on hold from the blocking level on, a collection
case at the collections level, the fee at the final notice for the customers
whose policy charges one.

Coherence rules, one check function each:

1. check_fee: a sentence saying a fee was added appears if and only if a fee
   is unpaid on the account, with its amount; "late-payment fee" is named
   only then, or when the next level charges one.
2. check_agency: the agency is named if and only if the open collection case
   names one; a hand-over is told as done only when a case is open.
3. check_block: orders are said to be on hold if and only if the party's
   ordering is blocked; a block to come is told only when the next level
   blocks and it is not blocked yet.
4. check_plan_and_discount: instalments are mentioned if and only if a plan
   holds lines of the party; an early-payment discount is offered if and
   only if one still holds on the date, with its amount.
5. check_future_dates: every date stated as a consequence is after the date
   of the reminder.
6. check_rows: every overdue row's days late is the reminder's date minus
   its due date; "the oldest is N days past due" is the largest of them;
   the rows are the party's open lines, overdue apart from the others.
7. check_totals: the totals add up to the cent: overdue, not yet due and
   credits are the sums of their rows, the amount to pay now is what is due
   plus fees less credits.
8. check_translated: no sentence of the English rendering appears verbatim in
   the French one, and no placeholder (${, %(, {{) is left in any rendering.
9. check_links: every http(s) address of the HTML is inside an <a href>, and
   the HTML has a button to pay in the portal.
10. check_no_survey: no survey link in a formal notice nor in a collections
   notice.
11. check_html_width: the HTML is at most 600 px wide and has no fixed width
   above 360 px, so that it reads on a phone.
12. check_formats: dates are written DD/MM/YYYY and amounts the way the
   customer's language writes them.
"""
import datetime as dt
import html as html_module
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from proteus import Model

from trytond.transaction import Transaction

from conftest import make_customer, world

CORPUS = Path(__file__).resolve().parent.parent / 'var' / 'message-corpus'
LANGS = ('en', 'fr')
COUNTRIES = {'en': 'GB', 'fr': 'FR'}
VARIANTS = ('plain', 'fee', 'credit', 'agency', 'plan', 'discount')
AGENCY = "Recouvra Conseil SAS"
TODAY = dt.date.today()
OLDEST = TODAY - dt.timedelta(days=60)
AMOUNTS = (Decimal('1234.56'), Decimal('250.00'), Decimal('400.00'))
CREDIT = Decimal('150.00')
SURVEY = '/survey/'
URL = re.compile(r'https?://\S+')


@pytest.fixture
def tryton_all():
    "The three modules: SMS texts, portal notices and the survey link"
    yield from world(['dunning_advanced', 'dunning_sms', 'dunning_portal'])


def term(name, days, discount_days=None):
    PaymentTerm = Model.get('account.invoice.payment_term')
    payment_term = PaymentTerm(name=name)
    if discount_days:
        payment_term.early_discount_rate = Decimal('0.02')
        payment_term.early_discount_days = discount_days
    line = payment_term.lines.new(type='remainder')
    line.relativedeltas.new(days=days)
    payment_term.save()
    return payment_term


def invoice_on(tryton, party, amount, invoice_date, payment_term):
    Invoice = Model.get('account.invoice')
    invoice = Invoice(type='out', party=party, invoice_date=invoice_date,
        payment_term=payment_term)
    line = invoice.lines.new()
    line.product = tryton['product']
    line.quantity = 1
    line.unit_price = amount
    invoice.click('post')
    return invoice


def receive_payment(tryton, party, amount, date):
    "A bank payment booked on the party's account, not allocated"
    Move = Model.get('account.move')
    Journal = Model.get('account.journal')
    accounts = tryton['accounts']
    move = Move(journal=Journal.find([('code', '=', 'CASH')])[0], date=date)
    move.lines.new(account=accounts['cash'], debit=amount)
    move.lines.new(account=accounts['receivable'], party=party,
        credit=amount)
    move.click('post')


def setup_world(tryton):
    "Customers of each variant in each language, their invoices and facts"
    Lang = Model.get('ir.lang')
    Country = Model.get('country.country')
    Configuration = Model.get('account.configuration')
    Journal = Model.get('account.journal')
    french, = Lang.find([('code', '=', 'fr')])
    Lang.click([french], 'load_translations')
    countries = {code: Country(name=name, code=code)
        for code, name in [('GB', "United Kingdom"), ('FR', "France")]}
    for country in countries.values():
        country.save()

    configuration = Configuration(1)
    configuration.early_discount_account = tryton['accounts']['expense']
    configuration.early_discount_journal, = Journal.find(
        [('code', '=', 'MISC')])
    configuration.save()
    for code, contact, instructions in [
            ('en', "Claire, credit control, +33 1 23 45 67 89",
                "Bank transfer to IBAN FR76 3000 4000 0100, quoting the "
                "invoice numbers."),
            ('fr', "Claire, service recouvrement, +33 1 23 45 67 89",
                "Virement sur l'IBAN FR76 3000 4000 0100, en indiquant les "
                "numéros de facture.")]:
        with tryton['config'].set_context(language=code):
            configuration = Configuration(1)
            configuration.dunning_contact = contact
            configuration.dunning_payment_instructions = instructions
            configuration.save()

    procedure = tryton['procedure']
    procedure.plan_allowed = True
    procedure.save()
    net30 = term("Net 30", 30)
    net120 = term("Net 120", 120)
    discounted = term("2 % within 90 days, net 120", 120, discount_days=90)
    parties = {}
    for lang in LANGS:
        for variant in VARIANTS:
            name = f"Garage {variant.capitalize()} {lang.upper()}"
            party = make_customer(name, f'{variant}-{lang}@garage.example',
                lang=lang)
            address, = party.addresses
            address.country = countries[COUNTRIES[lang]]
            party.save()
            parties[party] = (lang, variant)
    # Invoices are numbered in the order of their dates.
    for party, (_, variant) in parties.items():
        invoice_on(tryton, party, AMOUNTS[2], OLDEST - dt.timedelta(days=40),
            discounted if variant == 'discount' else net120)
    for party in parties:
        invoice_on(tryton, party, AMOUNTS[0], OLDEST - dt.timedelta(days=30),
            net30)
    for party in parties:
        invoice_on(tryton, party, AMOUNTS[1], OLDEST - dt.timedelta(days=10),
            net30)
    for party, (_, variant) in parties.items():
        if variant == 'credit':
            receive_payment(tryton, party, CREDIT, OLDEST)
    return {party.id: facts for party, facts in parties.items()}


def test_message_corpus(tryton_all):
    tryton = tryton_all
    parties = setup_world(tryton)
    from trytond.pool import Pool
    from trytond.transaction import TransactionError
    config = tryton['config']
    extras = {}
    while True:
        # Posting a fee takes table locks: Tryton starts such a
        # transaction again with the locks it asked for.
        try:
            with Transaction().start(config.database_name, config.user,
                    context=config.context, **extras) as transaction:
                cases, problems = render_and_check(Pool(), parties)
                transaction.rollback()
            break
        except TransactionError as error:
            error.fix(extras)
    assert len(cases) > 200
    assert not problems, '\n'.join(problems[:60])


def render_and_check(pool, parties):
    corpus = Corpus(pool, parties)
    corpus.make_plans()
    cases = corpus.render_all()
    problems = []
    for case in cases:
        for check in CHECKS:
            problems.extend(
                f"{case['name']}: {check.__name__}: {problem}"
                for problem in check(corpus, case, cases))
    corpus.write(cases, problems)
    return cases, problems


class Corpus:
    "Renders the reminders in a server transaction, as the senders do"

    def __init__(self, pool, parties):
        self.pool = pool
        self.parties = parties
        Company = pool.get('company.company')
        self.company = Company(Transaction().context['company'])
        ModelData = pool.get('ir.model.data')
        Level = pool.get('account.dunning.level')
        Procedure = pool.get('account.dunning.procedure')
        self.procedure = Procedure(ModelData.get_id(
                'dunning_advanced', 'procedure_default'))
        self.levels = sorted(self.procedure.levels,
            key=lambda l: l.offset_days)
        self.fee = next(l.fee for l in self.levels if l.fee)
        self.Level = Level

    def make_plans(self):
        """The plan customers pay their second invoice in two instalments,
        the first due the day after the oldest invoice"""
        Plan = self.pool.get('account.dunning.plan')
        Party = self.pool.get('party.party')
        Invoice = self.pool.get('account.invoice')
        date = OLDEST + dt.timedelta(days=1)
        for party_id, (_, variant) in self.parties.items():
            if variant != 'plan':
                continue
            invoice, = Invoice.search([
                    ('party', '=', party_id),
                    ('total_amount', '=', AMOUNTS[1]),
                    ])
            with Transaction().set_context(company=self.company.id):
                plan, problems = Plan.prepare(self.company, Party(party_id),
                    [invoice.id], date, count=2, days=45)
            assert not problems, problems
            plan.save()
            Plan.accept([plan])

    def render_all(self):
        """Each level in turn on the day the oldest line reaches it:
        first for the customers whose policy charges a fee at the final
        notice, then for the others, whose policy charges none"""
        cases = []
        with_fee = sorted(p for p, (_, v) in self.parties.items()
            if v == 'fee')
        without = sorted(p for p, (_, v) in self.parties.items()
            if v != 'fee')
        cases += self.render_levels(with_fee)
        fee_levels = [l for l in self.levels if l.fee]
        self.Level.write(fee_levels, {'fee': None})
        cases += self.render_levels(without)
        self.Level.write(fee_levels, {'fee': self.fee.id})
        return cases

    def render_levels(self, party_ids):
        pool = self.pool
        Run = pool.get('account.dunning.run')
        Renderer = pool.get('account.dunning.renderer')
        from trytond.modules.dunning_advanced.engine import (
            NEUTRAL, Message)
        cases = []
        for level in self.levels:
            date = OLDEST + dt.timedelta(days=level.offset_days)
            self.apply_level(level, date, party_ids)
            with Transaction().set_context(company=self.company.id):
                context = Run.load_context(self.company, date)
                _, details = Run.load(self.company, date, party_ids, context)
                messages = []
                for party_id in party_ids:
                    reached = [l for l in details['per_party'][party_id]
                        if (date - l['maturity_date']).days
                        >= level.offset_days]
                    for channel in self.channels(level):
                        messages.append(Message(party_id=party_id,
                                level_id=level.id, channel=channel,
                                line_ids=tuple(l['id'] for l in reached),
                                amount=sum(l['amount'] for l in reached),
                                date=date,
                                key=f'{party_id}:{channel}:{level.id}:{date}',
                                next_level_id=None, next_level_date=None,
                                tone=NEUTRAL))
                rendered = Renderer.render(
                    self.company, messages, details, context)
                for message in messages:
                    cases.append(self.case(message, level, details,
                            context, rendered[message.key]))
        return cases

    @staticmethod
    def channels(level):
        return ['email', 'letter', 'portal'] + (
            ['sms'] if level.sms_template else [])

    def apply_level(self, level, date, party_ids):
        "What the level does, as the run's escalation does it"
        pool = self.pool
        Party = pool.get('party.party')
        Collection = pool.get('account.dunning.collection')
        Dunning = pool.get('account.dunning')
        FeeDunningLevel = pool.get('account.dunning.fee.dunning_level')
        Line = pool.get('account.move.line')
        if level.credit_limit:
            Party.write(Party.browse(party_ids),
                {'dunning_ordering_blocked': True})
        if level.collection:
            Collection.create([{
                        'company': self.company.id, 'party': p,
                        'date': date, 'level': level.id,
                        'agency': (AGENCY if self.parties[p][1] == 'agency'
                            else None),
                        } for p in party_ids])
        if level.fee:
            for party_id in party_ids:
                line, = Line.search([
                        ('party', '=', party_id),
                        ('maturity_date', '=', OLDEST),
                        ])
                dunning, = Dunning.create([{
                            'company': self.company.id, 'line': line.id,
                            'procedure': self.procedure.id,
                            'level': level.id}])
                fee = FeeDunningLevel(dunning=dunning, level=level)
                fee.amount, fee.currency = level.fee.get_amount(dunning)
                fee.save()
                with Transaction().set_context(dunning_date=date):
                    FeeDunningLevel.process([fee])

    def case(self, message, level, details, context, rendered):
        party_id = message.party_id
        lang, variant = self.parties[party_id]
        _, subject, body, body_html = rendered
        return {
            'name': (f'{lang}-{variant}-{level.offset_days:+03d}-'
                f'{self.slug(level)}-{message.channel}'),
            'lang': lang, 'variant': variant, 'level': level,
            'channel': message.channel, 'date': message.date,
            'party': party_id, 'subject': subject or '', 'text': body,
            'html': body_html or '', 'details': details,
            'context': context, 'facts': self.facts(party_id, details,
                message.date),
            }

    @staticmethod
    def slug(level):
        return re.sub(r'\W+', '-', level.name.lower()).strip('-')

    def facts(self, party_id, details, date):
        "What the database says of the party, read here on its own"
        pool = self.pool
        Party = pool.get('party.party')
        Collection = pool.get('account.dunning.collection')
        Line = pool.get('account.move.line')
        Plan = pool.get('account.dunning.plan')
        Invoice = pool.get('account.invoice')
        open_lines = Line.search([
                ('party', '=', party_id),
                ('account.type.receivable', '=', True),
                ('reconciliation', '=', None),
                ('move.state', '=', 'posted'),
                ])
        fees = sum((l.debit - l.credit for l in open_lines
                if l.move.origin and l.move.origin.__name__
                == 'account.dunning.fee.dunning_level'), Decimal(0))
        cases = Collection.search([
                ('party', '=', party_id), ('state', '=', 'open')])
        plans = Plan.search([
                ('party', '=', party_id),
                ('state', 'in', ['active', 'broken'])])
        invoices = Invoice.search([
                ('party', '=', party_id), ('state', '=', 'posted')])
        return {
            'fees': fees,
            'blocked': Party(party_id).dunning_ordering_blocked,
            'case': cases[0] if cases else None,
            'plan': bool(plans),
            'offers': Invoice.early_discount_offers(invoices, date),
            'lines': [l for l in open_lines
                if l.maturity_date and l.debit > l.credit],
            'credits': sum((l.credit - l.debit for l in open_lines
                    if l.credit > l.debit), Decimal(0)),
            }

    def text(self, case, message_id, **variables):
        "A message of ours in the case's language"
        from trytond.i18n import gettext
        with Transaction().set_context(language=case['lang']):
            return gettext(message_id, **variables)

    def lang(self, case):
        Lang = self.pool.get('ir.lang')
        return Lang.get(f"{case['lang']}_{COUNTRIES[case['lang']]}")

    def money(self, case, amount):
        return self.lang(case).currency(
            amount, self.company.currency, grouping=True)

    def date(self, case, value):
        return self.lang(case).strftime(value)

    def next_level(self, case):
        "The next level and its date for the oldest line, as the policy says"
        from trytond.modules.dunning_advanced.engine import next_level
        policy = case['context']['policies'][self.procedure.id]
        level_id = case['level'].id
        while True:
            following, when = next_level(policy, level_id, OLDEST)
            if following is None or when > case['date']:
                return following, when
            level_id = following.id

    def write(self, cases, problems):
        "The corpus as files a person opens, with an index"
        CORPUS.mkdir(parents=True, exist_ok=True)
        for old in CORPUS.iterdir():
            old.unlink()
        index = []
        for case in cases:
            name = case['name']
            if case['channel'] == 'sms':
                (CORPUS / f'{name}.sms.txt').write_text(case['text'] + '\n')
                files = [f'{name}.sms.txt']
            else:
                (CORPUS / f'{name}.txt').write_text(
                    f"Subject: {case['subject']}\n\n{case['text']}\n")
                (CORPUS / f'{name}.html').write_text(case['html'])
                files = [f'{name}.html', f'{name}.txt']
            index.append({'case': name, 'language': case['lang'],
                    'variant': case['variant'],
                    'level': case['level'].name, 'channel': case['channel'],
                    'date': case['date'].isoformat(), 'files': files})
        (CORPUS / 'index.json').write_text(json.dumps(index, indent=1))
        rows = ''.join(
            f"<tr><td>{html_module.escape(i['case'])}</td>"
            f"<td>{i['date']}</td><td>"
            + ' '.join(f'<a href="{f}">{f.rsplit(".", 1)[-1]}</a>'
                for f in i['files']) + '</td></tr>' for i in index)
        (CORPUS / 'index.html').write_text(
            '<!DOCTYPE html><meta charset="utf-8"><title>Message corpus'
            f'</title><h1>Message corpus ({len(index)} reminders, '
            f'{len(problems)} problems)</h1><table>{rows}</table>')
        (CORPUS / 'problems.txt').write_text(''.join(
                p + '\n' for p in problems))


def readable(case):
    "The text and HTML a customer reads, without markup"
    return case['subject'] + '\n' + case['text']


def html_text(case):
    return html_module.unescape(re.sub(r'<[^>]+>', ' ', case['html']))


def check_fee(corpus, case, cases):
    text = readable(case)
    fees = case['facts']['fees']
    if fees:
        told = corpus.text(case, 'dunning_advanced.msg_status_fee',
            amount=corpus.money(case, fees))
        if told not in text:
            yield f"fee of {fees} unpaid but not told"
    following, _ = corpus.next_level(case)
    named = re.search(r'late-payment fee|frais de retard', text, re.I)
    if named and not fees and not (following and following.fee):
        yield "names a late-payment fee: none is unpaid nor to come"


def check_agency(corpus, case, cases):
    text = readable(case) + html_text(case)
    collection = case['facts']['case']
    if (AGENCY in text) != bool(collection and collection.agency):
        yield "the agency is named without a case naming it, or not named"
    done = re.search(r'was handed over|a été transmis', text)
    if done and not collection:
        yield "tells a hand-over that did not happen"
    if collection and not done:
        yield "does not tell the hand-over"


def check_block(corpus, case, cases):
    text = readable(case)
    blocked = case['facts']['blocked']
    held = corpus.text(case, 'dunning_advanced.msg_status_blocked')
    if (held in text) != blocked:
        yield f"orders on hold told: {held in text}, blocked: {blocked}"
    coming = corpus.text(case, 'dunning_advanced.msg_next_block')
    following, _ = corpus.next_level(case)
    if coming in text and (blocked or not (
                following and following.block_ordering)):
        yield "tells a block to come that the next level does not make"


def check_plan_and_discount(corpus, case, cases):
    if case['channel'] == 'sms':
        # Two SMS name the amount and its due date, no invoice.
        return
    text = readable(case)
    mentions = bool(re.search(r'instalment|échéance \d', text))
    if mentions != case['facts']['plan']:
        yield f"plan mentioned: {mentions}, plan: {case['facts']['plan']}"
    offers = case['facts']['offers']
    offered = bool(re.search(r'Early-payment discount|Escompte', text))
    if offered != bool(offers):
        yield f"discount offered: {offered}, offers: {sorted(offers)}"
    for discount, amount, deadline in offers.values():
        if corpus.money(case, discount) not in text:
            yield f"the discount of {discount} is not told"


def dates_in(corpus, case, text):
    for found in re.findall(r'\b\d{2}/\d{2}/\d{4}\b', text):
        yield dt.datetime.strptime(found, '%d/%m/%Y').date()


def check_future_dates(corpus, case, cases):
    start = corpus.text(case, 'dunning_advanced.msg_consequence_on',
        amount='\0', date='\0', consequence='\0').split('\0')[0]
    for line in readable(case).splitlines():
        if start in line:
            for date in dates_in(corpus, case, line):
                if date <= case['date']:
                    yield f"consequence dated {date}, not after the send date"
    following, when = corpus.next_level(case)
    if (following and case['channel'] != 'sms'
            and case['facts']['lines']
            and (following.block_ordering and not case['facts']['blocked']
                or following.collection and not case['facts']['case']
                or following.fee)
            and '${consequence}' in (case['level'].template.body or '')
            and corpus.date(case, when) not in case['text']):
        yield f"the next level's date {when} is not told"


def section(corpus, case, name):
    "The rows under the title of a section of the plain text"
    title = corpus.text(case, f'dunning_advanced.msg_section_{name}')
    lines = case['text'].splitlines()
    if title not in lines:
        return []
    at = lines.index(title) + 2
    rows = []
    while at < len(lines) and lines[at].strip():
        rows.append(re.split(r'\s{2,}', lines[at].strip()))
        at += 1
    return rows


def amount_of(case, text):
    digits = re.sub(r'[^\d,.\-]', '', text)
    if case['lang'] == 'fr':
        digits = digits.replace('.', '').replace(',', '.')
    else:
        digits = digits.replace(',', '')
    return Decimal(digits)


def check_rows(corpus, case, cases):
    if case['channel'] == 'sms':
        return
    overdue = section(corpus, case, 'overdue')
    days = []
    for row in overdue:
        due = dt.datetime.strptime(row[-3], '%d/%m/%Y').date()
        if int(row[-1]) != (case['date'] - due).days:
            yield f"row {row[0]}: {row[-1]} days late, due {due}"
        days.append(int(row[-1]))
    lines = case['facts']['lines']
    late = [l for l in lines if l.maturity_date < case['date']]
    if len(overdue) != len(late):
        yield f"{len(overdue)} overdue rows for {len(late)} overdue lines"
    shown = len(overdue) + len(section(corpus, case, 'not_yet_due')) + len(
        section(corpus, case, 'due_today'))
    if shown != len(lines):
        yield f"{shown} rows for {len(lines)} open lines"
    body = case['level'].template.body or ''
    if '${days_late}' in body and days:
        oldest = re.search(r'(\d+) (?:days past due|jours de retard)',
            case['text'])
        if not oldest or int(oldest.group(1)) != max(days):
            yield f"oldest told {oldest and oldest.group(1)}, rows {days}"


def totals_of(corpus, case):
    found = {}
    for name in ('overdue', 'due_today', 'fees', 'credits', 'to_pay',
            'not_yet_due'):
        label = corpus.text(case, f'dunning_advanced.msg_total_{name}')
        match = re.search(r'^' + re.escape(label) + r'\s?:\s+(.+)$',
            case['text'], re.M)
        if match:
            found[name] = amount_of(case, match.group(1))
    return found


def check_totals(corpus, case, cases):
    if case['channel'] == 'sms':
        return
    totals = totals_of(corpus, case)
    zero = Decimal(0)
    for name, column in [
            ('overdue', -2), ('due_today', -1), ('not_yet_due', -1)]:
        rows = sum((amount_of(case, r[column])
                for r in section(corpus, case, name)), zero)
        if totals.get(name, zero) != rows:
            yield f"{name} total {totals.get(name)} for rows adding {rows}"
    credits = sum((amount_of(case, r[-1])
            for r in section(corpus, case, 'credits')), zero)
    if -totals.get('credits', zero) != credits:
        yield f"credits total {totals.get('credits')} for rows {credits}"
    if credits != case['facts']['credits']:
        yield f"credits {credits} on an account with {case['facts']['credits']}"
    if totals.get('fees', zero) != case['facts']['fees']:
        yield f"fees {totals.get('fees')} for {case['facts']['fees']} unpaid"
    to_pay = max(zero, totals.get('overdue', zero)
        + totals.get('due_today', zero) + totals.get('fees', zero) - credits)
    if totals.get('to_pay', zero) != to_pay:
        yield f"to pay now {totals.get('to_pay')}, rows say {to_pay}"
    overdue = sum((l.debit - l.credit for l in case['facts']['lines']
            if l.maturity_date < case['date']), zero)
    if totals.get('overdue', zero) != overdue:
        yield f"overdue {totals.get('overdue')}, the ledger says {overdue}"


def sentences(text):
    for line in URL.sub(' ', text).splitlines():
        for sentence in re.split(r'(?<=[.?!:])\s+', line):
            sentence = sentence.strip()
            # Names, numbers, addresses and amounts read alike in both.
            if len(re.findall(r'[A-Za-z]{3,}', sentence)) >= 3:
                yield sentence


def check_translated(corpus, case, cases):
    for text in (case['subject'], case['text'], case['html']):
        for left in ('${', '%(', '{{', '{%'):
            if left in text:
                yield f"a placeholder is left: {left}"
    if case['lang'] != 'fr':
        return
    english = next(c for c in cases if c['lang'] == 'en'
        and c['variant'] == case['variant'] and c['level'] == case['level']
        and c['channel'] == case['channel'])
    french = readable(case) + '\n' + html_text(case)
    for sentence in sentences(readable(english)):
        if sentence in french:
            yield f"English in French: {sentence!r}"


def check_links(corpus, case, cases):
    if not case['html']:
        return
    outside = re.sub(r'<a\s[^>]*href="https?://[^"]+"[^>]*>.*?</a>', '',
        case['html'], flags=re.S)
    for url in re.findall(r'https?://\S+', outside):
        yield f"link not clickable: {url[:60]}"
    if case['channel'] == 'email':
        label = corpus.text(case, 'dunning_advanced.msg_pay_button')
        if not re.search(r'<a href="https?://[^"]+"[^>]*>' + re.escape(
                    html_module.escape(label)) + '</a>', case['html']):
            yield "no button to pay"


def check_no_survey(corpus, case, cases):
    level = case['level']
    if (level.formal_notice or level.collection) and (
            SURVEY in case['text'] or SURVEY in case['html']):
        yield "a survey link in a formal or collections notice"


def check_html_width(corpus, case, cases):
    page = case['html']
    for width in re.findall(r'max-width:\s*(\d+)px', page):
        if int(width) > 600:
            yield f"max-width {width}px"
    fixed = re.sub(r'max-width:\s*\d+px', '', page)
    for width in re.findall(r'(?<![-\w])width:\s*(\d+)px', fixed) + re.findall(
            r'\bwidth="(\d+)"', fixed):
        if int(width) > 360:
            yield f"fixed width {width}px"


def check_formats(corpus, case, cases):
    due = corpus.date(case, OLDEST)
    if not re.fullmatch(r'\d{2}/\d{2}/\d{4}', due):
        yield f"dates written {due}"
    if case['channel'] != 'sms' and due not in case['text']:
        yield f"the oldest due date is not written {due}"
    amount = corpus.money(case, AMOUNTS[0])
    expected = {'en': '$1,234.56', 'fr': '1\u00a0234,56\u00a0$'}[case['lang']]
    if amount.replace(' ', '\u00a0') != expected:
        yield f"amounts written {amount!r}"
    if case['channel'] != 'sms' and amount not in case['text']:
        yield f"the oldest invoice's amount is not written {amount!r}"


CHECKS = [check_fee, check_agency, check_block, check_plan_and_discount,
    check_future_dates, check_rows, check_totals, check_translated,
    check_links, check_no_survey, check_html_width, check_formats]
