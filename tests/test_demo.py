"""`make demo` tells the truth: the demo (demo/run_demo.py) is built in a
directory and on ports of its own and served as a person would use it, then
checked from the outside: its database, var/outbox and the portal.

- the history was run as of its own dates: every reminder dated today is at
  a level one of its lines reached today, and the mail of the SMTP sink is
  today's, dated now;
- French customers get French mail, UK customers DD/MM/YYYY dates;
- SMS reminders went to the local Twilio and are written under outbox/sms;
- at least two demo customers propose a payment plan in the portal and the
  policy accepts it;
- a card payment in the portal through the local Stripe pays the invoice,
  reconciled in the ledger.
"""
import datetime as dt
import email
import email.policy
import email.utils
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from html import unescape
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from portal_support import DESKTOP, chromium  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.live_server, pytest.mark.skipif(
        os.environ.get('TRYTOND_DATABASE_URI', '').startswith('postgresql'),
        reason="the demo is the product on SQLite: the SQLite run checks it")]

PASSWORD = 'Garage-demo-2026'
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
READY = "Ctrl-C to stop"
BUILD_TIMEOUT = 900  # s: the demo's build on a busy 2-core machine
VISA = '4242424242424242'


def free_base_port():
    "A port free for trytond with the demo's other three at +25, +26, +27"
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        if port > 60000:
            continue
        ports = [port, port + 25, port + 26, port + 27]
        if all(is_free(p) for p in ports):
            return port
    raise RuntimeError("no free ports")


def is_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
        return True


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    "The demo built and served from a directory of its own"
    var = tmp_path_factory.mktemp('demo')
    port = free_base_port()
    # The demo has its own configuration: none of the tests' database
    env = {k: v for k, v in os.environ.items()
        if not k.startswith('TRYTOND_') and k not in {'DB_NAME', 'DB_CACHE'}}
    log_path = var / 'run_demo.log'
    with open(log_path, 'w', encoding='utf-8') as log:
        process = subprocess.Popen([sys.executable,
                str(ROOT / 'demo' / 'run_demo.py'),
                '--var', str(var), '--port', str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        end = time.monotonic() + BUILD_TIMEOUT
        while READY not in log_path.read_text(encoding='utf-8'):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < end, log_path.read_text()
            time.sleep(1)
        database = sqlite3.connect(
            f'file:{var / "demo.sqlite"}?mode=ro', uri=True)
        yield SimpleNamespace(var=var, outbox=var / 'outbox',
            portal=f'http://localhost:{port}/demo/portal/',
            stripe=f'http://127.0.0.1:{port + 27}',
            db=database, today=dt.date.today(),
            log=log_path.read_text(encoding='utf-8'))
        database.close()
    finally:
        process.terminate()
        process.wait(timeout=60)


def rows(demo, query, *args):
    return demo.db.execute(query, args).fetchall()


def as_date(value):
    return dt.date.fromisoformat(value[:10])


def shifts(demo):
    "{(procedure id, segment): days the segment's cadence moves the levels}"
    return {(p, s): d or 0 for p, s, d in rows(demo,
            'SELECT procedure, segment, shift_days '
            'FROM account_dunning_procedure_segment')}


def test_history_not_sent_again_today(demo):
    "Every reminder of today is at a level one of its lines reached today"
    today = demo.today.isoformat()
    segment = dict(rows(demo,
            'SELECT party, segment FROM account_dunning_segment'))
    shift = shifts(demo)
    reached = {}
    for message, party, level, procedure, offset, maturity in rows(demo,
            'SELECT m.id, m.party, m.level, l.procedure, l.offset_days, '
            'ml.maturity_date '
            'FROM account_dunning_message AS m '
            'JOIN "account_dunning_message-account_dunning" AS r '
            'ON r.message = m.id '
            'JOIN account_dunning AS d ON d.id = r.dunning '
            'JOIN account_move_line AS ml ON ml.id = d.line '
            'JOIN account_dunning_level AS l ON l.id = m.level '
            "WHERE m.date = ? AND m.state != 'merged'", today):
        days = offset + shift.get((procedure, segment.get(party)), 0)
        reached.setdefault(message, set()).add(
            as_date(maturity) + dt.timedelta(days=days))
    assert reached, "today's run sent reminders"
    stale = {m: sorted(d) for m, d in reached.items()
        if demo.today not in d}
    assert not stale, "reminders of today for levels reached before today"

    history = rows(demo,
        'SELECT date, sent_at FROM account_dunning_message '
        "WHERE date < ? AND state = 'sent'", today)
    assert len(history) >= 10, "the past runs sent their reminders"
    assert all(as_date(sent) < demo.today for date, sent in history
        if as_date(date) < demo.today - dt.timedelta(days=1)), (
        "the reminders of the past were sent in the past")
    runs = rows(demo, 'SELECT date FROM account_dunning_run')
    assert len(runs) > 2 and min(as_date(d) for d, in runs) < (
        demo.today - dt.timedelta(days=60))


def emails(demo):
    return [email.message_from_bytes(p.read_bytes(),
            policy=email.policy.default)
        for p in sorted(demo.outbox.glob('*.eml'))]


def test_outbox_holds_todays_mail(demo):
    "The SMTP sink got today's reminders only, each dated when it was sent"
    received = emails(demo)
    sent = {k for k, in rows(demo,
            "SELECT key FROM account_dunning_message "
            "WHERE channel = 'email' AND state = 'sent' AND date = ?",
            demo.today.isoformat())}
    assert received
    assert {m['X-Dunning-Key'] for m in received} == sent
    for mail in received:
        date = email.utils.parsedate_to_datetime(mail['Date'])
        assert date.astimezone(dt.timezone.utc).date() == demo.today


def sent_by_lang(demo):
    "{language code: [(channel, subject, body)]} of every reminder sent"
    by_lang = {}
    for code, channel, subject, body in rows(demo,
            'SELECT l.code, m.channel, m.subject, m.body '
            'FROM account_dunning_message AS m '
            'JOIN party_party_lang AS pl ON pl.party = m.party '
            'JOIN ir_lang AS l ON l.id = pl.lang '
            "WHERE m.state = 'sent' AND m.channel IN ('email', 'sms')"):
        by_lang.setdefault(code, []).append((channel, subject, body))
    return by_lang


def test_french_mail_and_uk_dates(demo):
    "French customers read French, UK customers dates day first"
    by_lang = sent_by_lang(demo)
    assert set(by_lang) == {'fr', 'en_GB'}
    for channel, subject, body in by_lang['fr']:
        assert re.search(r'\bfactures?\b', (subject or '') + body, re.I), (
            body)
        assert not re.search(r'\b(invoices?|hello)\b', body, re.I), body
    for mail in emails(demo):
        if mail['To'].endswith('.fr>'):
            text = mail.get_body(preferencelist=('plain',)).get_content()
            assert re.search(r'\bfactures?\b', text, re.I), text
    days = []
    for channel, subject, body in by_lang['en_GB']:
        for date in re.findall(r'\b\d\d/\d\d/\d{4}\b', body):
            days.append(dt.datetime.strptime(date, '%d/%m/%Y').day)
    assert days and max(days) > 12, "dates written day first"


def test_sms_written_beside_the_mail(demo):
    files = sorted((demo.outbox / 'sms').glob('*.txt'))
    sent = rows(demo,
        "SELECT recipient FROM account_dunning_message "
        "WHERE channel = 'sms' AND state = 'sent' AND date = ?",
        demo.today.isoformat())
    assert files and len(files) == len(sent)
    numbers = {r for r, in sent}
    for path in files:
        head, body = path.read_text(encoding='utf-8').split('\n\n', 1)
        to = re.search(r'^To: (\+\d+)$', head, re.M)[1]
        assert to in numbers and to in path.name
        assert 'http' in body, "the SMS links to the portal"


class Customer:
    "A customer's browser on the demo's portal: requests with cookies"

    def __init__(self, demo, email_):
        self.portal = demo.portal
        self.http = requests.Session()
        page = self.http.get(self.portal + 'login')
        response = self.http.post(self.portal + 'login', data={
                'csrf_token': CSRF.search(page.text)[1],
                'email': email_, 'password': PASSWORD})
        assert response.url == self.portal, "logged in"

    def get(self, path, **params):
        return self.http.get(self.portal + path, params=params)

    def post(self, path, data):
        data = list(data)
        data.append(('csrf_token', self.http.cookies['dunning_portal_csrf']))
        return self.http.post(self.portal + path, data=data)


def portal_users(demo):
    return [e for e, in rows(demo, 'SELECT email FROM web_user ORDER BY id')]


def test_customers_propose_accepted_plans(demo):
    "The policy accepts a plan in 3 monthly instalments of several of them"
    accepted = []
    for login in portal_users(demo):
        if login.startswith('compta.garage-dupont'):
            continue  # pays by card below
        customer = Customer(demo, login)
        preview = customer.get('plans/new', mode='instalments', count=3,
            frequency='month')
        if preview.status_code != 200:
            continue
        form, = re.findall(
            r'<form method="post" action="[^"]*/plans/new".*?</form>',
            preview.text, re.S)
        data = [(n, unescape(v)) for n, v in HIDDEN.findall(form)
            if n != 'csrf_token']
        answer = customer.post('plans/new', data)
        assert re.search(r'/plans/\d+$', answer.url), answer.text
        accepted.append(login)
    assert len(accepted) >= 2, accepted
    states = rows(demo, 'SELECT state FROM account_dunning_plan')
    assert len(states) == len(accepted)
    assert {s for s, in states} <= {'active', 'waiting'}


def test_card_payment_paid_and_reconciled(demo, chromium):
    "A customer pays an invoice by card in the browser, on the local Stripe"
    (journal,), = rows(demo,
        "SELECT j.id FROM account_payment_journal AS j "
        "JOIN account_payment_stripe_account AS a ON a.id = j.stripe_account "
        "WHERE j.process_method = 'stripe'")
    login, = [e for e in portal_users(demo)
        if e.startswith('compta.garage-dupont')]
    page = chromium.new_page(viewport=DESKTOP)
    stripe_js = []
    page.on('request', lambda r: r.url.startswith(demo.stripe)
        and r.resource_type == 'script' and stripe_js.append(r.url))
    page.goto(demo.portal + 'login')
    page.locator('input[name="email"]').fill(login)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('input[name="password"]').press('Enter')
    page.wait_for_url(demo.portal)
    invoice = int(page.locator('tr[data-invoice]').first.get_attribute(
            'data-invoice'))
    page.goto(demo.portal + f'pay?invoice={invoice}')
    page.locator('form[action$="/pay"] button[type="submit"]').first.click()
    page.wait_for_url(re.compile(r'/pay/\d+/card$'))
    assert stripe_js, "Stripe.js of the local Stripe"
    page.get_by_label('Card number').fill(VISA)
    page.get_by_label('Expiry (MM/YY)').fill('12/34')
    page.get_by_label('CVC').fill('123')
    page.locator('#payment-submit').click()
    page.wait_for_url(re.compile(r'/pay/\d+/done\?'))
    # Garage Dupont reads the portal in French
    page.get_by_role('heading',
        name="Merci, votre paiement est enregistré").wait_for(timeout=20_000)

    end = time.monotonic() + 60
    while rows(demo, 'SELECT state FROM account_invoice WHERE id = ?',
            invoice) != [('paid',)]:
        assert time.monotonic() < end, "the invoice is not paid"
        time.sleep(1)
    lines = rows(demo,
        'SELECT ml.reconciliation FROM account_move_line AS ml '
        'JOIN account_invoice AS i ON i.move = ml.move '
        'WHERE i.id = ? AND ml.account = i.account', invoice)
    assert lines and all(r for r, in lines), "reconciled in the ledger"
    payment, = rows(demo,
        'SELECT state, journal FROM account_payment')
    assert payment == ('succeeded', journal)
