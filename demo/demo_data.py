#!/usr/bin/env python3
"""Demo data for the dunning demo: a B2B car-parts distributor.

"Pièces Auto Pro SAS" sells parts on credit to garages, workshops and
fleets in France and the UK.  The data holds twelve months of invoicing
history, most of it paid (on time, late once, often late) and a few
well-defined situations for the dunning run of today:

* an invoice due in exactly 7 days and one due today, at reliable
  customers: they get no reminder before the due date;
* invoices overdue by 3, 10, 15, 21, 30 and 48 days;
* a high-risk customer with several invoices 30 to 90 days overdue;
* a customer disputing an overdue invoice (brake discs delivery);
* a customer with an unreconciled credit note;
* a customer without any email address (letter and task fallback);
* two new customers on "2% 10 days, net 15" whose courtesy reminders offer
  the early-payment discount; reliable customers on "2% 10 days, net 30",
  one of whom paid an invoice less the discount 8 days ago (the daily run
  grants the discount);
* the on-time reward of reliable customers configured (0.5 % of what they
  paid on time in the quarter, from 10 EUR);
* payment plans the policy lets customers propose in the portal, card
  payments through the local Stripe and SMS through the local Twilio of
  ``run_demo.py`` for the customers with a mobile number;
* French customers speaking French, UK customers en_GB (DD/MM/YYYY).

``load`` builds the ledger up to HISTORY_DAYS ago; ``run_history`` then
posts and pays the rest day by day, running the daily dunning of each day
as of that day, its reminders recorded as sent at their time.

The payment profiles are such that the daily run learns every segment:
reliable, first-time late, repeat late, high risk and new
(``EXPECTED_SEGMENT``; ``run_demo.py`` warns about a customer elsewhere).

Everything is relative to the real today, and deterministic
(``random.Random(42)``).

Usable alone on a database where ``dunning_advanced``, ``dunning_sms``
and ``dunning_portal`` are activated (the ledger of today, without the runs
of the past)::

    python demo/demo_data.py -c var/trytond-demo.conf -d demo
"""
import argparse
import contextlib
import datetime as dt
import random
import sys
import time
from decimal import ROUND_HALF_EVEN, Decimal

from dateutil.relativedelta import relativedelta

from proteus import Model
from proteus import config as pconfig

__all__ = ['load']

COMPANY_NAME = "Pièces Auto Pro SAS"
CENT = Decimal('0.01')

# name, list price (untaxed), type, typical quantity range
PRODUCTS = [
    ("Brake pads set", Decimal('45.90'), 'goods', (2, 12)),
    ("Brake discs pair", Decimal('89.50'), 'goods', (1, 8)),
    ("Oil filter", Decimal('8.90'), 'goods', (10, 40)),
    ("Air filter", Decimal('14.50'), 'goods', (5, 20)),
    ("Engine oil 5W-30 (5 L)", Decimal('32.00'), 'goods', (4, 24)),
    ("Timing belt kit", Decimal('149.00'), 'goods', (1, 4)),
    ("Car battery 70 Ah", Decimal('118.00'), 'goods', (1, 6)),
    ("Shock absorber", Decimal('62.40'), 'goods', (2, 8)),
    ("Spark plugs (set of 4)", Decimal('24.80'), 'goods', (2, 15)),
    ("Clutch kit", Decimal('265.00'), 'goods', (1, 3)),
    ("Wiper blades pair", Decimal('19.90'), 'goods', (5, 20)),
    ("Express delivery", Decimal('15.00'), 'service', (1, 1)),
    ]

PRICES = {name: price for name, price, _, _ in PRODUCTS}

# Profiles of payment behaviour
RELIABLE = 'reliable'        # pays on or before the due date
LATE_ONCE = 'late_once'      # was late once in the year
OFTEN_LATE = 'often_late'    # often pays 10-40 days late
HIGH_RISK = 'high_risk'      # several invoices 30-90 days overdue
NEW = 'new'                  # first orders in the last weeks, none paid yet

# The segment the daily run of today should learn from each profile
EXPECTED_SEGMENT = {
    RELIABLE: 'reliable',
    LATE_ONCE: 'first_late',
    OFTEN_LATE: 'repeat_late',
    HIGH_RISK: 'high_risk',
    NEW: 'new',
    }
# Often late, but not so often that it is high risk: the segments make a
# customer high risk from 6 invoices paid late in a year
OFTEN_LATE_COUNT = (2, 5)

# name, country, city, postal code, street, lang, payment term key,
# monthly invoice rate, profile, special role
CUSTOMERS = [
    ("Garage Dupont", 'FR', "Lyon", "69003", "12 rue Paul Bert",
        'fr', 'net30', 1.0, RELIABLE, 'due_in_7'),
    ("Atelier Martin", 'FR', "Villeurbanne", "69100",
        "48 cours Émile Zola", 'fr', 'net30', 0.9, RELIABLE, 'due_today'),
    ("Garage Moreau & Fils", 'FR', "Grenoble", "38000",
        "5 avenue Alsace-Lorraine", 'fr', 'net45', 0.8, RELIABLE, None),
    ("Carrosserie Lefebvre", 'FR', "Saint-Étienne", "42000",
        "27 rue de la Montat", 'fr', 'net30', 0.7, LATE_ONCE, 'overdue_30'),
    ("Garage du Centre", 'FR', "Annecy", "74000", "3 rue Royale",
        'fr', 'eom30', 0.6, RELIABLE, None),
    ("Auto Service Girard", 'FR', "Valence", "26000",
        "91 avenue Victor Hugo", 'fr', 'disc30', 0.7, RELIABLE,
        'discount_paid'),
    ("Garage Bernard", 'FR', "Mâcon", "71000", "14 quai Lamartine",
        'fr', 'net30', 0.5, LATE_ONCE, None),
    ("Atelier Mécanique Roux", 'FR', "Chambéry", "73000",
        "8 rue de Boigne", 'fr', 'net30', 0.6, OFTEN_LATE, None),
    ("Garage des Alpes", 'FR', "Gap", "05000", "22 route de Briançon",
        'fr', 'eom30', 0.5, RELIABLE, None),
    ("Transports Fournier", 'FR', "Villefranche-sur-Saône", "69400",
        "150 avenue de l'Europe", 'fr', 'net30', 1.4, RELIABLE, 'disputed'),
    ("Garage Petit", 'FR', "Bourg-en-Bresse", "01000",
        "6 boulevard de Brou", 'fr', 'net30', 0.6, OFTEN_LATE, 'overdue_10'),
    ("Atelier Fontaine", 'FR', "Vienne", "38200", "33 cours Romestang",
        'fr', 'net30', 0.5, RELIABLE, None),
    ("Garage Mercier Automobiles", 'FR', "Clermont-Ferrand", "63000",
        "71 avenue de la République", 'fr', 'net45', 0.9, LATE_ONCE, None),
    ("Flotte Services Rhône", 'FR', "Lyon", "69007",
        "210 avenue Jean Jaurès", 'fr', 'eom30', 1.5, RELIABLE, None),
    ("Taxis Lyonnais", 'FR', "Lyon", "69002", "9 quai Perrache",
        'fr', 'net30', 1.2, OFTEN_LATE, None),
    ("Garage Lambert", 'FR', "Roanne", "42300", "18 rue Jean Jaurès",
        'fr', 'net30', 0.6, OFTEN_LATE, 'overdue_48'),
    ("Garage Rousseau", 'FR', "Dijon", "21000", "40 rue d'Auxonne",
        'fr', 'disc30', 0.7, RELIABLE, 'discount_open'),
    ("Auto Répar' Blanc", 'FR', "Besançon", "25000",
        "2 rue de Vesoul", 'fr', 'net30', 0.5, LATE_ONCE, None),
    ("Garage Chevalier", 'FR', "Annemasse", "74100",
        "55 rue du Salève", 'fr', 'net30', 0.5, RELIABLE, None),
    ("Ambulances Garnier", 'FR', "Lyon", "69008",
        "4 rue Professeur Beauvisage", 'fr', 'net45', 1.0, RELIABLE, None),
    ("Garage Faure", 'FR', "Aix-les-Bains", "73100",
        "11 boulevard Wilson", 'fr', 'net30', 0.4, RELIABLE, None),
    ("Atelier Bonnet Poids Lourds", 'FR', "Saint-Priest", "69800",
        "8 rue du Dauphiné", 'fr', 'net45', 1.1, OFTEN_LATE, None),
    ("Garage de la Gare", 'FR', "Vichy", "03200", "1 place de la Gare",
        'fr', 'net30', 0.5, RELIABLE, 'no_email'),
    ("Location Utilitaires Perrin", 'FR', "Bron", "69500",
        "120 boulevard Pinel", 'fr', 'eom30', 1.2, LATE_ONCE, None),
    ("Garage Morel", 'FR', "Oyonnax", "01100", "7 rue Anatole France",
        'fr', 'net30', 0.4, RELIABLE, None),
    ("Dépannage Guérin", 'FR', "Bourgoin-Jallieu", "38300",
        "63 avenue Alsace-Lorraine", 'fr', 'net30', 0.9, HIGH_RISK,
        'high_risk'),
    ("Centre Auto Boyer", 'FR', "Montélimar", "26200",
        "19 avenue d'Espoulette", 'fr', 'disc30', 0.6, RELIABLE, None),
    ("Garage Henry", 'FR', "Thonon-les-Bains", "74200",
        "30 avenue de Genève", 'fr', 'net30', 0.5, LATE_ONCE, None),
    ("Atelier Vincent Motos", 'FR', "Lyon", "69009",
        "16 rue de Bourgogne", 'fr', 'net30', 0.4, RELIABLE, None),
    ("Garage Renaud Frères", 'FR', "Saint-Chamond", "42400",
        "25 rue de la Libération", 'fr', 'net30', 0.5, OFTEN_LATE, None),
    ("Fleet Services Ltd", 'GB', "Birmingham", "B6 7AB",
        "Unit 4, Aston Cross Business Park", 'en', 'eom30', 1.5,
        RELIABLE, None),
    ("Smith & Sons Motors", 'GB', "Manchester", "M12 6JH",
        "88 Hyde Road", 'en', 'net30', 0.8, OFTEN_LATE, 'overdue_21'),
    ("Wilson Auto Repairs", 'GB', "Leeds", "LS11 5QN",
        "14 Dewsbury Road", 'en', 'net30', 0.7, LATE_ONCE, 'overdue_3'),
    ("Taylor's Garage", 'GB', "Bristol", "BS3 4PH",
        "2 Bedminster Parade", 'en', 'net30', 0.6, RELIABLE, 'credit_note'),
    ("Brown Vehicle Workshop", 'GB', "Sheffield", "S3 8EN",
        "41 Penistone Road", 'en', 'net30', 0.5, RELIABLE, None),
    ("Evans Fleet Maintenance", 'GB', "Cardiff", "CF10 5DW",
        "Unit 12, Ocean Way", 'en', 'net45', 1.1, LATE_ONCE, None),
    ("Johnson Car Care", 'GB', "Nottingham", "NG7 2NR",
        "9 Castle Boulevard", 'en', 'net30', 0.5, RELIABLE, None),
    ("Roberts Motor Engineers", 'GB', "Leicester", "LE2 0QJ",
        "57 Welford Road", 'en', 'net30', 0.6, OFTEN_LATE, None),
    ("Walker Coachworks", 'GB', "Liverpool", "L3 4BJ",
        "3 Vauxhall Road", 'en', 'net45', 0.7, RELIABLE, None),
    ("Green Van Hire Ltd", 'GB', "London", "E16 2QY",
        "Unit 7, Thames Road Industrial Estate", 'en', 'eom30', 1.3,
        LATE_ONCE, None),
    ("Thompson Tyres & Brakes", 'GB', "Coventry", "CV1 4FS",
        "22 Far Gosford Street", 'en', 'net30', 0.6, RELIABLE, None),
    ("Hughes Garage", 'GB', "Reading", "RG1 8EQ",
        "10 Oxford Road", 'en', 'net30', 0.4, RELIABLE, None),
    # New accounts: no history, their first invoices are not due yet
    ("Garage Nouvelle Route", 'FR', "Vénissieux", "69200",
        "37 boulevard Ambroise Croizat", 'fr', 'disc15', 0, NEW,
        'new_discount'),
    ("Harper Mobile Mechanics", 'GB', "Oxford", "OX4 2HN",
        "Unit 3, Cowley Business Park", 'en', 'disc15', 0, NEW,
        'new_account'),
    ]

# Explicit situations for today: role -> list of (days overdue, products)
# "days overdue" is relative to the customer's term (Net 30 unless it is
# one of TERM_DAYS): negative means not yet due.
SITUATIONS = {
    'due_in_7': [(-7, [("Brake pads set", 8), ("Oil filter", 30)])],
    'due_today': [
        (0, [("Timing belt kit", 3), ("Engine oil 5W-30 (5 L)", 10)])],
    'overdue_3': [(3, [("Car battery 70 Ah", 4), ("Express delivery", 1)])],
    'overdue_10': [(10, [("Shock absorber", 6), ("Air filter", 10)])],
    'no_email': [(15, [("Clutch kit", 2), ("Spark plugs (set of 4)", 6)])],
    'overdue_21': [(21, [("Brake pads set", 10), ("Wiper blades pair", 12)])],
    'disputed': [(25, [("Brake discs pair", 16), ("Brake pads set", 16),
                ("Express delivery", 1)])],
    'overdue_30': [(30, [("Clutch kit", 3), ("Timing belt kit", 2)])],
    'overdue_48': [(48, [("Engine oil 5W-30 (5 L)", 20), ("Oil filter", 25)])],
    'credit_note': [(12, [("Car battery 70 Ah", 3), ("Brake pads set", 6)])],
    # 2 % 10 days, net 30: dated 3 days ago, the discount holds 7 more days
    'discount_open': [(-27, [("Timing belt kit", 2), ("Oil filter", 20)])],
    # 2 % 10 days, net 30: dated 16 days ago and paid 98 % 8 days ago, within
    # the 10 days: the daily run grants the 2 % left and settles it
    'discount_paid': [(-14, [("Car battery 70 Ah", 5), ("Air filter", 10)])],
    # 2 % 10 days, net 15, the term of new accounts: their courtesy reminder
    # (7 days before the due date) comes while the discount holds.
    # The first order of a new customer, 8 days ago, due in 7 days (courtesy
    # reminder with the discount offer, 2 more days), and a second one
    'new_discount': [
        (-7, [("Brake pads set", 6), ("Brake discs pair", 3)]),
        (-13, [("Engine oil 5W-30 (5 L)", 6), ("Oil filter", 12)]),
        ],
    # A first order 9 days ago, due in 6 days: the offer ends tomorrow
    'new_account': [(-6, [("Shock absorber", 4), ("Spark plugs (set of 4)", 4),
                ("Express delivery", 1)])],
    'high_risk': [
        (32, [("Clutch kit", 4), ("Express delivery", 1)]),
        (47, [("Brake discs pair", 10), ("Brake pads set", 10)]),
        (61, [("Car battery 70 Ah", 8)]),
        (75, [("Timing belt kit", 6), ("Engine oil 5W-30 (5 L)", 12)]),
        (89, [("Shock absorber", 12), ("Air filter", 15)]),
        ],
    }

FLEET_WORDS = {
    'Fleet', 'Flotte', 'Transports', 'Taxis', 'Ambulances', 'Location', 'Van'}

CREDIT_LIMITS = {
    RELIABLE: Decimal('15000'),
    LATE_ONCE: Decimal('10000'),
    OFTEN_LATE: Decimal('8000'),
    HIGH_RISK: Decimal('5000'),
    NEW: Decimal('3000'),
    }

# Terms of a fixed number of days
TERM_DAYS = {'net30': 30, 'net45': 45, 'disc30': 30, 'disc15': 15}
# Early-payment discount terms: key -> (name, rate, days, net days)
DISCOUNT_TERMS = {
    'disc30': ("2% 10 days, net 30", Decimal('0.02'), 10, 30),
    'disc15': ("2% 10 days, net 15", Decimal('0.02'), 10, 15),
    }
# Customers who log in to the portal, one per payment profile (so one per
# segment); the first is the login the demo prints. They share a password.
PORTAL_CUSTOMERS = [
    ("Smith & Sons Motors", OFTEN_LATE),
    ("Garage Dupont", RELIABLE),
    ("Wilson Auto Repairs", LATE_ONCE),
    ("Dépannage Guérin", HIGH_RISK),
    ("Harper Mobile Mechanics", NEW),
    ]
PORTAL_PASSWORD = 'Garage-demo-2026'
# The languages of the customers, by their key in CUSTOMERS: dunning_advanced
# ships en_GB, English as written in the United Kingdom (DD/MM/YYYY; its
# translations fall back to en).
LANGS = {'fr': 'fr', 'en': 'en_GB'}
# Payment plans the customers may propose in the portal: up to 6
# instalments over 120 days, each of at least 50 EUR, the first paid on
# acceptance, every segment but high risk; an accountant approves the plans
# above 5000 EUR first.
PLAN_LIMITS = {
    'plan_allowed': True,
    'plan_max_instalments': 6,
    'plan_max_days': 120,
    'plan_min_instalment': Decimal('50'),
    'plan_first_payment': True,
    'plan_approval_above': Decimal('5000'),
    }
# Card payments in the portal, against the local Stripe run_demo.py starts
# (tests/stripe_server.py): its test keys, and the least part payment.
STRIPE_SECRET_KEY = 'sk_test_' + 'demo' * 6
STRIPE_PUBLISHABLE_KEY = 'pk_test_' + 'demo' * 6
STRIPE_SIGNING_SECRET = 'whsec_' + 'demo' * 8
CARD_MINIMUM = Decimal('50')
# SMS through the local Twilio run_demo.py starts (tests/twilio_server.py)
TWILIO_ACCOUNT_SID = 'AC' + 'de' * 16
TWILIO_AUTH_TOKEN = 'demo-auth-token-' + '0' * 16
SMS_SENDER = '+33757000000'
# The customers who gave a mobile number: their courtesy, due-date and
# first overdue reminders go by SMS.
MOBILES = {
    "Wilson Auto Repairs": '+44 7911 123456',
    "Garage Nouvelle Route": '+33 6 12 34 56 78',
    "Harper Mobile Mechanics": '+44 7400 123456',
    "Garage Dupont": '+33 6 98 76 54 32',
    }
# On-time reward of reliable customers: rate, minimum, product
REWARD_RATE = Decimal('0.005')
REWARD_MINIMUM = Decimal('10')
REWARD_PRODUCT = "On-time payment reward"


def _log(verbose, *args):
    if verbose:
        print('   ', *args, flush=True)


def slug(name):
    import unicodedata
    text = unicodedata.normalize('NFKD', name).encode('ascii', 'ignore')
    text = text.decode('ascii').lower()
    out = []
    for char in text:
        out.append(char if char.isalnum() else '-')
    return '-'.join(filter(None, ''.join(out).split('-')))


def due_date(term, invoice_date):
    "Same rule as the payment terms created below"
    if term in TERM_DAYS:
        return invoice_date + dt.timedelta(days=TERM_DAYS[term])
    elif term == 'eom30':
        return invoice_date + relativedelta(day=31, days=30)
    raise ValueError(term)


def fiscal_years_span(today):
    "Years to cover: 13 months of history up to 60 days after today"
    start = today - relativedelta(months=13)
    end = today + dt.timedelta(days=60)
    return range(start.year, end.year + 1)


def setup_company(today, verbose):
    from trytond.modules.company.tests.tools import create_company, get_company

    Currency = Model.get('currency.currency')
    CurrencyRate = Model.get('currency.currency.rate')
    Country = Model.get('country.country')
    Lang = Model.get('ir.lang')
    Party = Model.get('party.party')

    eurs = Currency.find([('code', '=', 'EUR')])
    if eurs:
        eur, = eurs
    else:
        eur = Currency(
            name="Euro", code='EUR', symbol='€', rounding=CENT,
            numeric_code='978')
        eur.save()
        CurrencyRate(
            date=dt.date(2000, 1, 1), rate=Decimal('1'), currency=eur).save()

    countries = {}
    for code, name, code3, numeric in [
            ('FR', "France", 'FRA', '250'),
            ('GB', "United Kingdom", 'GBR', '826')]:
        found = Country.find([('code', '=', code)])
        if found:
            countries[code], = found
        else:
            country = Country(
                name=name, code=code, code3=code3, code_numeric=numeric)
            country.save()
            countries[code] = country

    langs = {l.code: l for l in Lang.find([('code', 'in', ['fr', 'en_GB'])])}

    party = Party(name=COMPANY_NAME, lang=langs.get('fr'))
    address, = party.addresses
    address.street = "24 rue de l'Industrie"
    address.postal_code = "69007"
    address.city = "Lyon"
    address.country = countries['FR']
    party.contact_mechanisms.new(
        type='email', value='accounts@pieces-auto.example')
    party.contact_mechanisms.new(type='phone', value='+33 4 99 00 10 20')
    party.contact_mechanisms.new(
        type='website', value='https://pieces-auto.example')
    party.save()
    create_company(party=party, currency=eur)
    company = get_company()
    _log(verbose, "company %s (%s)" % (company.rec_name, eur.code))

    # An employee for the admin user: the credit controller
    User = Model.get('res.user')
    Employee = Model.get('company.employee')
    employee_party = Party(name="Claire Durand", lang=langs.get('fr'))
    employee_party.contact_mechanisms.new(
        type='email', value='claire.durand@pieces-auto.example')
    employee_party.save()
    employee = Employee(party=employee_party, company=company)
    employee.save()
    user = User(pconfig.get_config().user)
    user.employees.append(employee)
    user.employee = employee
    user.save()
    pconfig.get_config()._context = User.get_preferences(True, {})
    return company, eur, countries, langs


def setup_accounting(company, today, verbose):
    from trytond.modules.account.tests.tools import (
        create_chart, create_fiscalyear, get_accounts)

    SequenceStrict = Model.get('ir.sequence.strict')
    SequenceType = Model.get('ir.sequence.type')

    create_chart(company)
    accounts = get_accounts(company)

    invoice_type, = SequenceType.find([('name', '=', "Invoice")], limit=1)
    for year in fiscal_years_span(today):
        fiscalyear = create_fiscalyear(
            company, today=(dt.date(year, 1, 1), dt.date(year, 12, 31)))
        # Same as account_invoice's set_fiscalyear_invoice_sequences but
        # with readable numbers and separate credit note numbering
        invoice_seq = SequenceStrict(
            name="Invoices %s" % year, sequence_type=invoice_type,
            company=company, prefix='FA%s-' % year, padding=5)
        invoice_seq.save()
        credit_seq = SequenceStrict(
            name="Credit notes %s" % year, sequence_type=invoice_type,
            company=company, prefix='AV%s-' % year, padding=4)
        credit_seq.save()
        seq, = fiscalyear.invoice_sequences
        seq.out_invoice_sequence = invoice_seq
        seq.in_invoice_sequence = invoice_seq
        seq.out_credit_note_sequence = credit_seq
        seq.in_credit_note_sequence = credit_seq
        fiscalyear.click('create_period')
        _log(verbose, "fiscal year %s: %s to %s" % (
                fiscalyear.name, fiscalyear.start_date,
                fiscalyear.end_date))

    return accounts


def setup_payment_terms():
    PaymentTerm = Model.get('account.invoice.payment_term')
    terms = {}

    net30 = PaymentTerm(name="Net 30")
    line = net30.lines.new(type='remainder')
    line.relativedeltas.new(days=30)
    net45 = PaymentTerm(name="Net 45")
    line = net45.lines.new(type='remainder')
    line.relativedeltas.new(days=45)
    eom30 = PaymentTerm(name="End of month + 30")
    line = eom30.lines.new(type='remainder')
    # dateutil applies the absolute day (end of month) before the days
    line.relativedeltas.new(day=31, days=30)
    PaymentTerm.save([net30, net45, eom30])
    terms.update(net30=net30, net45=net45, eom30=eom30)
    # The early-payment discount terms (setup_early_discount first: a term
    # with a discount needs the discount account and journal)
    discount_terms = []
    for key, (name, rate, days, net) in DISCOUNT_TERMS.items():
        term = PaymentTerm(name=name)
        term.early_discount_rate = rate
        term.early_discount_days = days
        line = term.lines.new(type='remainder')
        line.relativedeltas.new(days=net)
        terms[key] = term
        discount_terms.append(term)
    PaymentTerm.save(discount_terms)
    return terms


def setup_early_discount(company, accounts, verbose):
    """The expense account and the journal of the early-payment discounts
    granted by the daily run"""
    Account = Model.get('account.account')
    Journal = Model.get('account.journal')
    Configuration = Model.get('account.configuration')

    expense = accounts['expense']
    # Beside the expense account of the chart: same parent, code x.y.9
    code = None
    if expense.code and '.' in expense.code:
        prefix = expense.code.rsplit('.', 1)[0]
        code = prefix + '.9'
        if Account.find([('code', '=', code), ('company', '=', company.id)]):
            code = None
    account = Account(
        name="Discounts granted", code=code, company=company,
        type=expense.type, parent=expense.parent)
    account.save()
    journal = Journal(
        name="Early-payment discounts", code='DISC', type='general')
    journal.save()
    configuration = Configuration(1)
    configuration.early_discount_account = account
    configuration.early_discount_journal = journal
    configuration.save()
    _log(verbose, "early-payment discounts: account %s, journal %s" % (
            account.rec_name, journal.rec_name))
    return account, journal


def setup_on_time_reward(company, accounts, verbose):
    """The quarterly on-time reward of reliable customers: its service, its
    rate and minimum, and its scheduled job for the company"""
    ProductCategory = Model.get('product.category')
    ProductTemplate = Model.get('product.template')
    ProductUom = Model.get('product.uom')
    Configuration = Model.get('account.configuration')
    Cron = Model.get('ir.cron')

    category = ProductCategory(name="Customer incentives")
    category.accounting = True
    category.account_expense = accounts['expense']
    category.account_revenue = accounts['revenue']
    category.save()
    unit, = ProductUom.find([('name', '=', 'Unit')])
    template = ProductTemplate(
        name=REWARD_PRODUCT, default_uom=unit, type='service',
        list_price=Decimal(0), account_category=category, salable=True)
    template.save()
    product, = template.products

    configuration = Configuration(1)
    configuration.on_time_reward_product = product
    configuration.on_time_reward_rate = REWARD_RATE
    configuration.on_time_reward_minimum = REWARD_MINIMUM
    configuration.save()

    # The cron was created before the company: register the company so
    # that trytond-cron (and "Run Once") proposes its rewards
    crons = Cron.find([
            ('method', '=', 'account.dunning.reward|propose_last_quarter'),
            ])
    for cron in crons:
        if 'companies' in Cron._fields and company not in cron.companies:
            cron.companies.append(company)
            cron.save()
    _log(verbose, "on-time reward: %s %% of what reliable customers paid "
        "on time each quarter, from %s EUR, product %r" % (
            (REWARD_RATE * 100).normalize(), REWARD_MINIMUM,
            product.rec_name))
    return product


def setup_products(accounts):
    ProductCategory = Model.get('product.category')
    ProductUom = Model.get('product.uom')
    ProductTemplate = Model.get('product.template')

    category = ProductCategory(name="Car parts")
    category.accounting = True
    category.account_expense = accounts['expense']
    category.account_revenue = accounts['revenue']
    category.save()

    unit, = ProductUom.find([('name', '=', 'Unit')])
    templates = []
    for name, price, type_, _ in PRODUCTS:
        template = ProductTemplate(
            name=name, default_uom=unit, type=type_, list_price=price,
            account_category=category, salable=True)
        templates.append(template)
    ProductTemplate.save(templates)
    products = {}
    for template in templates:
        product, = template.products
        products[template.name] = product
    return products


def setup_payment_method(company, accounts):
    Journal = Model.get('account.journal')
    PaymentMethod = Model.get('account.invoice.payment.method')

    journal = Journal(name="Bank", code='BNK', type='cash')
    journal.save()
    method = PaymentMethod(
        name="Bank transfer", company=company, journal=journal,
        credit_account=accounts['cash'], debit_account=accounts['cash'])
    method.save()
    return method


def setup_plans(procedure, verbose):
    "The payment plans the customers may propose in the portal"
    for name, value in PLAN_LIMITS.items():
        setattr(procedure, name, value)
    procedure.save()
    _log(verbose, "payment plans in the portal: up to "
        "%(plan_max_instalments)s instalments over %(plan_max_days)s days, "
        "each from %(plan_min_instalment)s EUR, approval above "
        "%(plan_approval_above)s EUR" % PLAN_LIMITS)


def setup_card_payments(company, accounts, bank, verbose):
    """Card payments in the portal through Stripe: the Stripe account of the
    local Stripe, signed webhooks, and a payment journal booking the card
    payments on a clearing account until the payout reaches the bank.
    Return the webhook identifier of the Stripe account."""
    Account = Model.get('account.account')
    StripeAccount = Model.get('account.payment.stripe.account')
    PaymentJournal = Model.get('account.payment.journal')
    Configuration = Model.get('account.configuration')

    cash = accounts['cash']
    clearing = Account(name="Stripe balance", company=company,
        parent=cash.parent, type=cash.type, reconcile=True, deferral=True)
    clearing.save()
    account = StripeAccount(name="Stripe (local test server)",
        secret_key=STRIPE_SECRET_KEY,
        publishable_key=STRIPE_PUBLISHABLE_KEY)
    account.save()
    account.click('new_identifier')
    account.webhook_signing_secret = STRIPE_SIGNING_SECRET
    account.save()
    journal = PaymentJournal(name="Card (Stripe)", process_method='stripe',
        currency=company.currency, stripe_account=account,
        clearing_account=clearing, clearing_journal=bank)
    journal.save()
    configuration = Configuration(1)
    configuration.portal_payment_journal = journal
    configuration.portal_payment_minimum = CARD_MINIMUM
    configuration.save()
    _log(verbose, "card payments: Stripe account %r, journal %r, clearing "
        "account %r, from %s EUR" % (account.name, journal.name,
            clearing.name, CARD_MINIMUM))
    return account.webhook_identifier


def setup_sms(verbose):
    "The Twilio account and sender of the SMS reminders"
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.sms_account_sid = TWILIO_ACCOUNT_SID
    configuration.sms_auth_token = TWILIO_AUTH_TOKEN
    configuration.sms_from_number = SMS_SENDER
    configuration.save()
    _log(verbose, "SMS from %s, %d customers with a mobile number" % (
            SMS_SENDER, len(MOBILES)))


def find_procedure(verbose):
    "Return the dunning procedure of dunning_advanced or None"
    config = pconfig.get_config()
    ModelData = Model.get('ir.model.data')
    Procedure = Model.get('account.dunning.procedure')
    try:
        return Procedure(ModelData.get_id(
                'dunning_advanced', 'procedure_default', config.context))
    except Exception:
        pass
    procedures = Procedure.find([('name', '=', "Standard B2B")], limit=1)
    if procedures:
        return procedures[0]
    print("    WARNING: no dunning procedure found (xml id "
        "dunning_advanced.procedure_default or name 'Standard B2B'): "
        "customers are created without dunning procedure", flush=True)
    return None


# account.configuration fields of dunning_advanced used in the reminders
DUNNING_CONFIGURATION = {
    # Names and numbers only: the contact is not translated, and French
    # customers read it too
    'dunning_contact': (
        "Claire Durand, +33 4 99 00 10 21, "
        "accounts@pieces-auto.example"),
    }
DUNNING_CONFIGURATION_TRANSLATED = {
    'dunning_payment_instructions': {
        'en': ("Bank transfer to Pièces Auto Pro SAS, "
            "IBAN FR76 3000 4000 0100 0012 3456 789, BIC BNPAFRPPXXX, "
            "quoting the invoice numbers."),
        'fr': ("Virement à Pièces Auto Pro SAS, "
            "IBAN FR76 3000 4000 0100 0012 3456 789, BIC BNPAFRPPXXX, "
            "en indiquant les numéros de facture."),
        },
    }


def setup_dunning(procedure, portal_url, verbose):
    config = pconfig.get_config()
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    # The portal and opt-out links of the reminders point to the demo server
    configuration.dunning_portal_url = portal_url
    missing = []
    if procedure:
        configuration.default_dunning_procedure = procedure
    for name, value in DUNNING_CONFIGURATION.items():
        if name in Configuration._fields:
            setattr(configuration, name, value)
        else:
            missing.append(name)
    configuration.save()
    for name, values in DUNNING_CONFIGURATION_TRANSLATED.items():
        if name not in Configuration._fields:
            missing.append(name)
            continue
        for language in ['en', 'fr']:
            with config.set_context(language=language):
                configuration = Configuration(1)
                setattr(configuration, name, values[language])
                configuration.save()
    if missing:
        print("    WARNING: account.configuration has no field %s" % (
                ', '.join(missing)), flush=True)
    if procedure:
        _log(verbose, "default dunning procedure: %s (%d levels)" % (
                procedure.rec_name, len(procedure.levels)))


def setup_reminder_hours(company, verbose):
    """Reminders may reach the demo's customers at any hour of any day, so
    that today's run sends at once whenever the demo is started; the
    shipped hours, 08:00-20:00 on working days, would hold them until the
    next working morning in the evening and at weekends"""
    QuietHours = Model.get('account.dunning.quiet_hours')
    hours, = QuietHours.find([
            ('company', '=', company.id), ('channel', '=', None)]) or [
        QuietHours(company=company, channel=None)]
    hours.start = dt.time(0)
    hours.end = dt.time(23, 59, 59)
    for day in ['monday', 'tuesday', 'wednesday', 'thursday', 'friday',
            'saturday', 'sunday']:
        setattr(hours, day, True)
    hours.holidays = False
    hours.save()
    _log(verbose, "reminder hours: every day, at any hour (the demo's; "
        "Financial > Configuration > Dunnings > Reminder Hours)")


def create_customers(rng, countries, langs, terms, procedure):
    Party = Model.get('party.party')
    ContactMechanism = Model.get('party.contact_mechanism')
    has_dunning_usage = 'dunning' in ContactMechanism._fields
    parties = []
    for index, (name, country, city, postal_code, street, lang, term,
            rate, profile, role) in enumerate(CUSTOMERS):
        party = Party(name=name)
        party.lang = langs[LANGS[lang]]
        address, = party.addresses
        address.street = street
        address.postal_code = postal_code
        address.city = city
        address.country = countries[country]
        if role != 'no_email':
            domain = 'example.fr' if country == 'FR' else 'example.com'
            if FLEET_WORDS.intersection(name.split()) and has_dunning_usage:
                # Fleets have a general address and an accounts payable one
                # marked for payment reminders
                party.contact_mechanisms.new(type='email',
                    value='contact.%s@%s' % (slug(name), domain))
                party.contact_mechanisms.new(type='email',
                    value='%s.%s@%s' % (
                        'comptabilite' if country == 'FR'
                        else 'accounts-payable', slug(name), domain),
                    dunning=True)
            else:
                party.contact_mechanisms.new(type='email',
                    value='%s.%s@%s' % (
                        'compta' if country == 'FR' else 'accounts',
                        slug(name), domain))
        if country == 'FR':
            phone = '+33 1 99 00 %02d %02d' % (
                rng.randint(10, 99), rng.randint(10, 99))
        else:
            phone = '+44 121 496 0%03d' % rng.randint(0, 999)
        party.contact_mechanisms.new(type='phone', value=phone)
        if name in MOBILES:
            party.contact_mechanisms.new(type='mobile', value=MOBILES[name])
        party.customer_payment_term = terms[term]
        party.credit_limit_amount = CREDIT_LIMITS[profile]
        if procedure:
            party.dunning_procedure = procedure
        parties.append(party)
    Party.save(parties)
    return parties


def create_portal_users(parties, verbose):
    """Web users of the portal for PORTAL_CUSTOMERS, with their reminder
    email as login; [(customer, email, segment expected)]"""
    IrModel = Model.get('ir.model')
    if not IrModel.find([('name', '=', 'web.user')]):
        _log(verbose, "no portal users: dunning_portal is not activated")
        return []
    WebUser = Model.get('web.user')
    by_name = {p.name: p for p in parties}
    users, created = [], []
    for name, profile in PORTAL_CUSTOMERS:
        party = by_name[name]
        email, = [m.value for m in party.contact_mechanisms
            if m.type == 'email']
        user = WebUser(email=email, party=party)
        user.password = PORTAL_PASSWORD
        users.append(user)
        created.append((name, email, EXPECTED_SEGMENT[profile]))
    WebUser.save(users)
    return created


def random_lines(rng):
    "Return [(product name, quantity)] for a believable amount"
    while True:
        count = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
        chosen = rng.sample(PRODUCTS[:-1], count)
        lines = [(name, rng.randint(*qty)) for name, _, _, qty in chosen]
        if rng.random() < 0.2:
            lines.append(("Express delivery", 1))
        untaxed = sum(PRICES[n] * q for n, q in lines)
        if Decimal('80') <= untaxed <= Decimal('3300'):
            return lines


def plan_invoices(rng, today):
    """Return the list of invoices to create as dicts:
    customer index, invoice date, lines, pay date (or None), kind"""
    plans = []
    for index, (name, _, _, _, _, _, term, rate, profile, role) in (
            enumerate(CUSTOMERS)):
        if profile == NEW:
            count = 0
        else:
            count = max(3, round(rate * 12 * rng.uniform(0.8, 1.2)))
        days = sorted(rng.sample(range(2, 366), count), reverse=True)
        history = []
        for days_ago in days:
            invoice_date = today - dt.timedelta(days=days_ago)
            history.append({
                    'customer': index,
                    'date': invoice_date,
                    'due': due_date(term, invoice_date),
                    'lines': random_lines(rng),
                    'kind': 'history',
                    })
        # Choose when each history invoice was paid
        old = [p for p in history if (today - p['due']).days > 60]
        late_once = rng.choice(old) if old else None
        for plan in history:
            due = plan['due']
            if profile == LATE_ONCE and plan is late_once:
                delay = rng.randint(8, 25)
            elif profile == OFTEN_LATE and rng.random() < 0.6:
                delay = rng.randint(10, 40)
            elif profile == HIGH_RISK:
                if (today - due).days <= 100:
                    # the recent ones are the explicit unpaid situations
                    continue
                delay = rng.randint(15, 45)
            else:
                delay = rng.randint(-10, 0)
            pay = max(due + dt.timedelta(days=delay),
                plan['date'] + dt.timedelta(days=1))
            plan['pay'] = pay if pay < today else None
            plans.append(plan)
        if profile == OFTEN_LATE:
            limit_late_payments(
                [p for p in plans if p['customer'] == index], today)
        for overdue, lines in SITUATIONS.get(role, []):
            # explicit situations are on terms of a fixed number of days
            assert term in TERM_DAYS, name
            days = TERM_DAYS[term]
            invoice_date = today - dt.timedelta(days=days + overdue)
            plan = {
                'customer': index,
                'date': invoice_date,
                'due': invoice_date + dt.timedelta(days=days),
                'lines': lines,
                'pay': None,
                'kind': role,
                }
            if role == 'disputed':
                plan['reference'] = 'PO-FOUR-0417'
                plan['description'] = "Brake discs delivery - fleet order"
            elif role == 'discount_paid':
                # 8 days after the invoice, the amount less the discount
                plan['pay'] = invoice_date + dt.timedelta(days=8)
                plan['pay_discount'] = DISCOUNT_TERMS[term][1]
            plans.append(plan)
    return plans


def limit_late_payments(plans, today):
    """Keep between OFTEN_LATE_COUNT invoices paid late (beyond the 2 days
    of grace) among plans, those of an often late customer: the most
    recent ones stay late, the older ones were paid on time."""
    least, most = OFTEN_LATE_COUNT
    paid = [p for p in plans if p['pay']]
    late = [p for p in paid if (p['pay'] - p['due']).days > 2]
    for plan in late[:-most] if len(late) > most else []:
        # paid on its due date (or the day after the invoice)
        plan['pay'] = max(plan['due'], plan['date'] + dt.timedelta(days=1))
    on_time = [p for p in paid if p not in late]
    for plan in reversed(on_time):
        if len(late) >= least:
            break
        pay = plan['due'] + dt.timedelta(days=12 + len(late) * 5)
        if pay < today:
            plan['pay'] = pay
            late.append(plan)


def create_invoices(plans, parties, products, refs):
    """Create the draft invoices of plans.

    The values are given directly to create (in batches) instead of filling
    proteus records field by field: the on_change calls of invoice lines
    (taxes) make that 20 times slower."""
    Invoice = Model.get('account.invoice')
    context = pconfig.get_config().context
    values = []
    for plan in plans:
        party = parties[plan['customer']]
        value = {
            'company': refs['company'].id,
            'type': 'out',
            'party': party.id,
            'invoice_address': party.addresses[0].id,
            'account': refs['receivable'].id,
            'journal': refs['journal'].id,
            'currency': refs['currency'].id,
            'payment_term': party.customer_payment_term.id,
            'invoice_date': plan['date'],
            }
        if plan.get('reference'):
            value['reference'] = plan['reference']
        if plan.get('description'):
            value['description'] = plan['description']
        lines = []
        for name, quantity in plan['lines']:
            product = products[name]
            lines.append({
                    'type': 'line',
                    'company': refs['company'].id,
                    'currency': refs['currency'].id,
                    'product': product.id,
                    'description': name,
                    'account': refs['revenue'].id,
                    'quantity': quantity,
                    'unit': product.default_uom.id,
                    'unit_price': PRICES[name],
                    })
        value['lines'] = [('create', lines)]
        values.append(value)
    ids = []
    for start in range(0, len(values), 100):
        ids.extend(Invoice._proxy.create(values[start:start + 100], context))
    return [Invoice(id_) for id_ in ids]


@contextlib.contextmanager
def report_rendering_deferred(database):
    """Do not render the invoice reports while posting.

    Posting a customer invoice queues the rendering of its report (a third
    of the posting time).  With a queue worker configured, the task is only
    stored; the stored tasks are removed afterwards: the report is rendered
    when someone prints the invoice."""
    from trytond import config as trytond_config
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    previous = trytond_config.get('queue', 'worker', default=None)
    if not trytond_config.has_section('queue'):
        trytond_config.add_section('queue')
    trytond_config.set('queue', 'worker', 'True')
    try:
        yield
    finally:
        if previous is None:
            trytond_config.remove_option('queue', 'worker')
        else:
            trytond_config.set('queue', 'worker', previous)
        with Transaction().start(database, 0):
            Queue = Pool().get('ir.queue')
            tasks = Queue.search([('dequeued_at', '=', None)])
            tasks = [t for t in tasks
                if t.data.get('method') == 'print_invoice']
            Queue.delete(tasks)


def post_invoices(invoices, database):
    Invoice = Model.get('account.invoice')
    # Invoice numbers must follow the invoice dates
    invoices = sorted(invoices, key=lambda i: (i.invoice_date, i.id))
    # One batch per year: post is restarted for each table or record it
    # needs to lock (the invoice and move sequences are per fiscal year)
    batches = []
    for invoice in invoices:
        if (not batches or len(batches[-1]) >= 250
                or batches[-1][-1].invoice_date.year
                != invoice.invoice_date.year):
            batches.append([])
        batches[-1].append(invoice)
    with report_rendering_deferred(database):
        for batch in batches:
            # Validating first makes those restarts cheaper
            Invoice.click(batch, 'validate_invoice')
            Invoice.click(batch, 'post')


def pay_invoices(to_pay, method, refs):
    """Pay each (date, invoice, discount rate) of to_pay: in full when the
    rate is None, else less the early-payment discount at that rate.

    It produces what the pay wizard (account.invoice.pay) does: a payment move
    dated at the payment date in the journal of the payment method, with
    the invoice as origin, its line added to the payment lines of the
    invoice and reconciled with the line to pay (so the invoice is paid at
    that date).  But it does so in batches: the wizard costs about one
    second per invoice.  A payment less the discount is not reconciled: it
    is the partial payment of the pay wizard, and the daily run grants the
    discount and reconciles."""
    config = pconfig.get_config()
    context = config.context
    Invoice = Model.get('account.invoice')
    Move = Model.get('account.move')
    MoveLine = Model.get('account.move.line')
    Period = Model.get('account.period')
    Reconciliation = Model.get('account.move.reconciliation')

    company = refs['company'].id
    receivable = refs['receivable'].id
    periods = Period._proxy.search_read([
            ('company', '=', company),
            ('type', '=', 'standard'),
            ], 0, None, None, ['start_date', 'end_date'], context)

    def period(date):
        for period in periods:
            if period['start_date'] <= date <= period['end_date']:
                return period['id']
        raise ValueError("No period for %s" % date)

    invoice_ids = [i.id for _, i, _ in to_pay]
    invoices = {r['id']: r for r in Invoice._proxy.read(
            invoice_ids, ['number', 'party', 'move', 'total_amount'],
            context)}
    lines_to_pay = {r['move']: r['id'] for r in MoveLine._proxy.search_read([
                ('move', 'in', [r['move'] for r in invoices.values()]),
                ('account', '=', receivable),
                ], 0, None, None, ['move'], context)}

    batch = 200
    for start in range(0, len(to_pay), batch):
        chunk = to_pay[start:start + batch]
        values = []
        for date, invoice, rate in chunk:
            record = invoices[invoice.id]
            amount = record['total_amount']
            if rate is not None:
                # rounded as Currency.round does
                amount -= (amount * rate).quantize(
                    CENT, rounding=ROUND_HALF_EVEN)
            values.append({
                    'company': company,
                    'journal': method.journal.id,
                    'period': period(date),
                    'date': date,
                    'origin': 'account.invoice,%s' % invoice.id,
                    'description': "Payment %s" % record['number'],
                    'lines': [('create', [{
                                    'account': receivable,
                                    'party': record['party'],
                                    'debit': Decimal(0),
                                    'credit': amount,
                                    }, {
                                    'account': method.debit_account.id,
                                    'debit': amount,
                                    'credit': Decimal(0),
                                    }])],
                    })
        move_ids = Move._proxy.create(values, context)
        Move._proxy.post(move_ids, context)
        payment_lines = {r['move']: r['id']
            for r in MoveLine._proxy.search_read([
                    ('move', 'in', move_ids),
                    ('account', '=', receivable),
                    ], 0, None, None, ['move'], context)}
        args = []
        reconciliations = []
        for move_id, (date, invoice, rate) in zip(move_ids, chunk):
            line = lines_to_pay[invoices[invoice.id]['move']]
            payment_line = payment_lines[move_id]
            args.extend(([invoice.id], {
                        'payment_lines': [('add', [payment_line])],
                        }))
            if rate is not None:
                continue
            reconciliations.append({
                    'company': company,
                    'date': date,
                    'lines': [('add', [line, payment_line])],
                    })
        Invoice._proxy.write(*args, context)
        if reconciliations:
            Reconciliation._proxy.create(reconciliations, context)


DISPUTE_REASON = "Customer disputes the brake discs delivery"
# The days before today the daily dunning ran: from the courtesy reminder of
# the oldest invoice still open (89 days late, high risk)
HISTORY_DAYS = 105
# Days after the due date on which Transports Fournier disputed its invoice
DISPUTED_AFTER = 3


class Ledger:
    """The invoices to post and the payments to record, each on its date:
    ``until(date)`` brings the ledger to what it was at the end of date"""

    def __init__(self, database, method, refs, posts, payments):
        self.database = database
        self.method = method
        self.refs = refs
        self.posts = posts
        self.payments = payments
        self.paid = []

    def until(self, date):
        posts = [i for d, i in self.posts if d <= date]
        payments = [p for p in self.payments if p[0] <= date]
        self.posts = [(d, i) for d, i in self.posts if d > date]
        self.payments = [p for p in self.payments if p[0] > date]
        if posts:
            post_invoices(posts, self.database)
        if payments:
            pay_invoices(payments, self.method, self.refs)
            self.paid.extend(payments)


def block_disputed(summary, verbose):
    "Block the dunning of the disputed invoice with its reason"
    Invoice = Model.get('account.invoice')
    Dunning = Model.get('account.dunning')
    invoice = Invoice(summary['disputed_invoice'])
    lines = [l.id for l in invoice.lines_to_pay]
    dunnings = Dunning.find([('line', 'in', lines)])
    for dunning in dunnings:
        dunning.blocked = True
        dunning.block_reason = DISPUTE_REASON
    Dunning.save(dunnings)
    _log(verbose, "dunning of %s (%s) blocked: %s" % (
            invoice.number, invoice.party.rec_name, DISPUTE_REASON))


def run_history(database, today, summary, verbose=True):
    """Run the daily dunning of each of the HISTORY_DAYS days before today,
    as of that day, on the ledger of that day (the invoices posted and the
    payments received on each day before its run), as the scheduled job
    did; the reminders each run planned for that day are recorded as sent
    then, their texts written that day, and are not sent again. Today's
    run then finds every line at the level it reached before today and
    sends only what today brings. Transports Fournier disputes its invoice
    DISPUTED_AFTER days after the due date."""
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    config = pconfig.get_config()
    ledger = summary['ledger']
    # The runs of the past share out no batches: the demo runs on SQLite.
    context = dict(config.context, dunning_run_processes=1)
    disputed_on = summary['disputed_due_date'] + dt.timedelta(
        days=DISPUTED_AFTER)
    Run = Pool(database).get('account.dunning.run')
    # The runs post moves (early-payment discounts, fees, interest): taken
    # from the start, the lock of their journal periods spares a run
    # restarted half-way, as Tryton restarts a transaction missing a lock.
    extras = {'_lock_tables': ['account_journal_period']}
    start = today - dt.timedelta(days=HISTORY_DAYS)
    dates = [start + dt.timedelta(days=n) for n in range(HISTORY_DAYS)]
    sent = 0
    for date in dates:
        ledger.until(date)
        while True:
            with Transaction().start(database, config.user,
                    context=context, **extras) as transaction:
                try:
                    Run.execute(date, send=False)
                except TransactionError as error:
                    transaction.rollback()
                    error.fix(extras)
                    continue
            break
        if date == disputed_on:
            block_disputed(summary, verbose)
        sent += mark_sent(database, config.user, context,
            dt.datetime.combine(date + dt.timedelta(days=1), dt.time()))
    ledger.until(today)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    sent += mark_sent(database, config.user, context, now)
    _log(verbose, "%d daily runs of the past, from %s to %s: %d reminders "
        "sent then, recorded at their time" % (
            len(dates), dates[0], dates[-1], sent))
    return dates


def mark_sent(database, user, context, before):
    """Write the texts of the messages the run of the day queued, on the
    ledger of that day, and record those planned before before (UTC) as
    sent at the time they were planned for; return how many"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    with Transaction().start(database, user, context=context):
        pool = Pool()
        Message = pool.get('account.dunning.message')
        Audit = pool.get('account.dunning.audit')
        Message.render(Message.search([
                    ('state', 'in', ['queued', 'deferred']),
                    ('body', '=', None),
                    ], order=[('id', 'ASC')]))
        messages = Message.search([
                ('state', 'in', ['queued', 'deferred']),
                ('planned_at', '<', before),
                ], order=[('id', 'ASC')])
        for message in messages:
            message.state = 'sent'
            message.sent_at = message.planned_at
            message.next_attempt = None
            message.attempts = 1
        Message.save(messages)
        Audit.record([Audit.entry('message_sent', party=m.party,
                    level=m.level, message=m, date=m.date)
                for m in messages])
    return len(messages)


class _Timer:
    "Wall and CPU seconds since creation"

    def __init__(self):
        self.wall = time.monotonic()
        self.cpu = time.process_time()

    def __str__(self):
        return "%.0fs, cpu %.0fs" % (
            time.monotonic() - self.wall, time.process_time() - self.cpu)


def load(config_file, database, today=None, verbose=True,
        portal_url='http://localhost:8000/demo'):
    """Load the demo data into database and return a summary dict.

    The database must have dunning_advanced, dunning_sms and dunning_portal
    activated and no company; portal_url is the address of the database on
    the server, to which the reminders link."""
    if today is None:
        today = dt.date.today()
    timer = _Timer()
    config = pconfig.set_trytond(database=database, config_file=config_file)
    config.skip_warning = True
    rng = random.Random(42)

    Company = Model.get('company.company')
    if Company.find([]):
        raise RuntimeError(
            "Database %r already has a company: demo data needs a fresh "
            "database" % database)

    company, eur, countries, langs = setup_company(today, verbose)
    accounts = setup_accounting(company, today, verbose)
    setup_early_discount(company, accounts, verbose)
    terms = setup_payment_terms()
    products = setup_products(accounts)
    setup_on_time_reward(company, accounts, verbose)
    method = setup_payment_method(company, accounts)
    _log(verbose, "%d products, %d payment terms, payment method %s" % (
            len(products), len(terms), method.name))

    procedure = find_procedure(verbose)
    setup_dunning(procedure, portal_url, verbose)
    setup_reminder_hours(company, verbose)
    setup_plans(procedure, verbose)
    webhook = setup_card_payments(company, accounts, method.journal, verbose)
    setup_sms(verbose)

    parties = create_customers(rng, countries, langs, terms, procedure)
    _log(verbose, "%d customers (%s)" % (len(parties), timer))
    portal_users = create_portal_users(parties, verbose)
    _log(verbose, "%d portal users, password %s" % (
            len(portal_users), PORTAL_PASSWORD))

    plans = plan_invoices(rng, today)
    roles = {c[-1]: i for i, c in enumerate(CUSTOMERS) if c[-1]}
    plans.append({
            'customer': roles['credit_note'],
            'date': today - dt.timedelta(days=12),
            'lines': [("Car battery 70 Ah", -2)],
            'description': "Returned car batteries (wrong reference)",
            'pay': None,
            'kind': 'credit_note_document',
            })
    Journal = Model.get('account.journal')
    journal, = Journal.find([('type', '=', 'revenue')], limit=1)
    refs = {
        'company': company, 'currency': eur, 'journal': journal,
        'receivable': accounts['receivable'], 'revenue': accounts['revenue'],
        }
    invoices = create_invoices(plans, parties, products, refs)
    _log(verbose, "%d invoices and 1 credit note created (%s)" % (
            len(invoices) - 1, timer))

    # The ledger up to the start of the runs of the past; run_history
    # posts and pays the rest day by day, as it happened.
    start = today - dt.timedelta(days=HISTORY_DAYS)
    ledger = Ledger(database, method, refs,
        posts=sorted(((p['date'], i) for p, i in zip(plans, invoices)),
            key=lambda x: (x[0], x[1].id)),
        payments=sorted(((p['pay'], i, p.get('pay_discount'))
                for p, i in zip(plans, invoices) if p['pay']),
            key=lambda x: (x[0], x[1].id)))
    ledger.until(start - dt.timedelta(days=1))
    _log(verbose, "invoices posted and paid up to %s (%s)" % (
            start - dt.timedelta(days=1), timer))
    paid = sum(1 for _, _, rate in ledger.payments + ledger.paid
        if rate is None)

    by_kind = {}
    for plan, invoice in zip(plans, invoices):
        by_kind.setdefault(plan['kind'], []).append(
            (plan['due'] if 'due' in plan else None, invoice))
    (_, credit_note), = by_kind.pop('credit_note_document')
    (disputed_due, disputed), = by_kind['disputed']
    _log(verbose, "disputed invoice for %s, due %s" % (
            disputed.party.rec_name, disputed_due))

    return {
        'company': company.id,
        'customers': len(parties),
        'invoices': len(invoices) - 1,
        'paid': paid,
        'credit_note': credit_note.id,
        'disputed_invoice': disputed.id,
        'disputed_due_date': disputed_due,
        'ledger': ledger,
        'procedure': procedure.id if procedure else None,
        # party id -> the segment its payment profile should give
        'expected_segments': {
            party.id: EXPECTED_SEGMENT[customer[8]]
            for party, customer in zip(parties, CUSTOMERS)},
        'situations': {
            k: [i.id for _, i in v] for k, v in by_kind.items()
            if k != 'history'},
        # (customer, email, segment) of the portal's users
        'portal_users': portal_users,
        'portal_password': PORTAL_PASSWORD,
        'stripe_webhook': webhook,
        'seconds': time.monotonic() - timer.wall,
        }


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Load the dunning demo data into a Tryton database")
    parser.add_argument('-c', '--config', default='var/trytond-demo.conf')
    parser.add_argument('-d', '--database', default='demo')
    parser.add_argument('--today', type=dt.date.fromisoformat,
        help="reference date (default: the real today)")
    options = parser.parse_args(argv)
    summary = load(options.config, options.database, options.today)
    summary['ledger'].until(options.today or dt.date.today())
    print("Loaded: %(customers)d customers, %(invoices)d invoices "
        "(%(paid)d paid) in %(seconds).0fs" % summary)


if __name__ == '__main__':
    sys.exit(main())
