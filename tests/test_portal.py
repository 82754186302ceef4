"""The customer portal over HTTP: logging in and out, sessions, password
reset, the one-time links of reminders, CSRF, other customers' records,
disputes, contact preferences and portal notices."""
import datetime as dt
import re
from decimal import Decimal
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from proteus import Model
from werkzeug.test import Client

from trytond import config as trytond_config

from conftest import (
    YEAR, body_of, make_customer, make_invoice, pay, run_dunning, signed)
from portal_support import PASSWORD, make_portal_user, tryton_portal  # noqa

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)  # runs on weekdays: weekends wait for office hours
WEB_TIMEOUT = 30 * 24 * 60 * 60  # web_user's default
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def day(offset):
    return DUE + dt.timedelta(days=offset)


@pytest.fixture
def client():
    from trytond.wsgi import app
    return Client(app)


@pytest.fixture
def root(tryton_portal):
    return f"/{quote(tryton_portal['config'].database_name, safe=':')}/portal/"


def text(response):
    return response.get_data(as_text=True)


def numbers(html):
    "The numbers of the invoices listed"
    return re.findall(r'>([^<>]+)<span class="visually-hidden"> \(PDF\)', html)


def csrf(client, url):
    "The CSRF token of the form at url"
    return CSRF.search(text(client.get(url))).group(1)


def log_in(client, root, email, password=PASSWORD, next_=None):
    data = {'csrf_token': csrf(client, root + 'login'), 'email': email,
        'password': password}
    if next_:
        data['next'] = next_
    return client.post(root + 'login', data=data)


def post(client, root, path, data=None, form=None):
    "POST to path with the CSRF token of the form at form (default path)"
    data = dict(data or {})
    data['csrf_token'] = csrf(client, root + (path if form is None else form))
    return client.post(root + path, data=data)


def set_config(section, option, value):
    if not trytond_config.has_section(section):
        trytond_config.add_section(section)
    trytond_config.set(section, option, str(value))


@pytest.fixture
def portal_config():
    "[dunning_portal] options set by a test, removed after it"
    set_config('dunning_portal', 'poll_interval', '10')
    try:
        yield lambda option, value: set_config(
            'dunning_portal', option, str(value))
    finally:
        trytond_config.remove_section('dunning_portal')
        # Removing a section leaves the values already read cached.
        for read in (trytond_config.get, trytond_config.getint,
                trytond_config.getboolean):
            read.cache_clear()


def portal_on_localhost(tryton):
    "Links of reminders that werkzeug's test client can follow"
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.dunning_portal_url = (
        f"http://localhost/{tryton['config'].database_name}")
    configuration.save()


@pytest.fixture
def garages(tryton_portal):
    """Garage Lenoir (a portal login) owes INV overdue since April and one
    not due yet, and paid a third; Garage Martin, another customer, owes
    one invoice and paid another"""
    world = tryton_portal
    today = dt.date.today()
    lenoir = make_customer("Garage Lenoir", 'lenoir@garage.example')
    martin = make_customer("Garage Martin", 'martin@garage.example')
    overdue = make_invoice(world, lenoir, '1250.00', INVOICE_DATE)
    paid = pay(world, make_invoice(world, lenoir, '300.00', INVOICE_DATE),
        day(2))
    martin_open = make_invoice(world, martin, '999.00', INVOICE_DATE)
    martin_paid = pay(world,
        make_invoice(world, martin, '42.00', INVOICE_DATE), day(3))
    # Numbered in the order of their dates: the recent one last.
    upcoming = make_invoice(world, lenoir, '80.50',
        today - dt.timedelta(days=5))
    make_portal_user(lenoir, 'lenoir@garage.example')
    make_portal_user(martin, 'martin@garage.example')
    return {
        'world': world, 'lenoir': lenoir, 'martin': martin,
        'overdue': overdue, 'upcoming': upcoming, 'paid': paid,
        'martin_open': martin_open, 'martin_paid': martin_paid,
        }


def payment_line(party):
    MoveLine = Model.get('account.move.line')
    line, = MoveLine.find([
            ('party', '=', party.id),
            ('account.type.receivable', '=', True),
            ('credit', '>', 0),
            ], limit=1)
    return line


def test_login_balance_logout(garages, client, root):
    lenoir = garages['lenoir']
    overdue, upcoming, paid = (
        garages['overdue'], garages['upcoming'], garages['paid'])

    page = client.get(root + 'payments')
    assert page.status_code == 303
    assert urlsplit(page.location).path == root + 'login'
    assert parse_qs(urlsplit(page.location).query)['next'] == [
        root + 'payments']

    wrong = log_in(client, root, 'lenoir@garage.example', 'not-it')
    unknown = log_in(client, root, 'nobody@garage.example', 'not-it')
    assert wrong.status_code == unknown.status_code == 401
    error = re.compile(r'<p class="error" role="alert"[^>]*>([^<]+)</p>')
    assert (error.search(text(wrong)).group(1)
        == error.search(text(unknown)).group(1)), (
        "the same words whether the email exists or not")
    assert 'Garage Lenoir' not in text(wrong)
    assert client.get(root).status_code == 303, "still logged out"

    done = log_in(client, root, 'Lenoir@Garage.example',
        next_=root + 'payments')
    assert done.status_code == 303
    assert done.location.endswith(root + 'payments')

    page = client.get(root)
    assert page.status_code == 200
    html = text(page)
    assert 'Garage Lenoir' in html
    assert 'lang="en"' in html
    rows = dict(re.findall(
            r'<tr data-invoice="(\d+)" data-status="(\w+)">', html))
    assert rows == {str(overdue.id): 'overdue', str(upcoming.id): 'open'}, (
        "the open invoices, not the paid one")
    assert numbers(html) == [overdue.number, upcoming.number]
    assert '$1,250.00' in html and '$80.50' in html
    assert '$1,330.50' in html, "the total due"
    days_late = (dt.date.today() - DUE).days
    assert f'<td data-label="Days late" class="num">{days_late}</td>' in html
    assert f'invoices/{overdue.id}.pdf' in html
    assert 'href="%spay"' % root in html
    assert 'href="%splans/new"' % root in html
    assert 'statement.pdf' in html

    page = client.get(root + 'invoices/paid')
    assert page.status_code == 200
    assert numbers(text(page)) == [paid.number]
    assert '$300.00' in text(page)

    page = client.get(root + 'payments')
    assert page.status_code == 200
    line = payment_line(lenoir)
    assert f'payments/{line.id}/receipt.pdf' in text(page)
    assert '$300.00' in text(page)

    out = post(client, root, 'logout', form='')
    assert out.status_code == 303
    assert client.get(root).status_code == 303, "logged out"


def test_login_next_stays_in_portal(garages, root):
    from trytond.wsgi import app
    for next_ in ['https://evil.example/', '//evil.example/x',
            '/other/path', 'javascript:alert(1)']:
        done = log_in(Client(app), root, 'lenoir@garage.example',
            next_=next_)
        assert done.status_code == 303
        assert urlsplit(done.location).path == root, next_
        assert urlsplit(done.location).netloc in {'', 'localhost'}


def age_sessions(config, delta):
    "Make every portal session look delta old"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(config.database_name)
    with Transaction().start(config.database_name, 0) as transaction:
        table = pool.get('web.user.session').__table__()
        then = dt.datetime.now() - delta
        transaction.connection.cursor().execute(*table.update(
                [table.create_date, table.write_date], [then, then]))
        transaction.commit()


def session_ages(config):
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(config.database_name)
    with Transaction().start(config.database_name, 0):
        Session = pool.get('web.user.session')
        return [dt.datetime.now() - s.last_modified_at
            for s in Session.search([])]


def test_session_expiry(garages, client, root, portal_config):
    config = garages['world']['config']
    log_in(client, root, 'lenoir@garage.example')
    assert client.get(root).status_code == 200

    age_sessions(config, dt.timedelta(minutes=30))
    assert client.get(root).status_code == 200
    age, = session_ages(config)
    assert age < dt.timedelta(minutes=1), "a page view keeps it alive"

    age_sessions(config, dt.timedelta(hours=2, minutes=1))
    page = client.get(root)
    assert page.status_code == 303, "idle more than 2 hours"
    assert urlsplit(page.location).path == root + 'login'
    assert session_ages(config) == [], "the idle session is gone"

    portal_config('session_idle', 8 * 60 * 60)
    set_config('session', 'web_timeout', 60 * 60)
    try:
        log_in(client, root, 'lenoir@garage.example')
        age_sessions(config, dt.timedelta(minutes=61))
        assert client.get(root).status_code == 303, (
            "web_user's timeout holds too")
    finally:
        set_config('session', 'web_timeout', WEB_TIMEOUT)


def reset_link(message):
    return re.search(
        r'http://localhost(/[^"\s]+/portal/reset/\w+\?email=\S+?)"',
        body_of(message, 'html')).group(1)


def test_password_reset_by_email(garages, client, root, mailbox):
    portal_on_localhost(garages['world'])
    asked = post(client, root, 'reset', {'email': 'lenoir@garage.example'})
    assert asked.status_code == 200
    unknown = post(client, root, 'reset', {'email': 'nobody@garage.example'})
    assert (text(asked).replace('lenoir@garage.example', 'EMAIL')
        == text(unknown).replace('nobody@garage.example', 'EMAIL')), (
        "the same answer whether the email has an account or not")
    message, = mailbox.messages
    assert message['To'] == 'lenoir@garage.example'
    link = reset_link(message)
    path, _, query = link.partition('?')
    assert path.startswith(root + 'reset/')

    page = client.get(link)
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in text(page)
    mismatch = client.post(path, data={
            'csrf_token': CSRF.search(text(page)).group(1),
            'email': 'lenoir@garage.example',
            'password': 'New-portal-2026', 'confirm': 'New-portal-2027'})
    assert mismatch.status_code == 400
    assert 'not the same' in text(mismatch)

    done = client.post(path, data={
            'csrf_token': CSRF.search(text(page)).group(1),
            'email': 'lenoir@garage.example',
            'password': 'New-portal-2026', 'confirm': 'New-portal-2026'})
    assert done.status_code == 303
    assert 'password_set' in done.location
    assert log_in(client, root, 'lenoir@garage.example').status_code == 401, (
        "the old password no longer works")
    assert log_in(client, root, 'lenoir@garage.example',
        'New-portal-2026').status_code == 303
    WebUser = Model.get('web.user')
    user, = WebUser.find([('email', '=', 'lenoir@garage.example')])
    assert user.password_hash.startswith('$'), "hashed as web_user does"
    assert 'New-portal-2026' not in user.password_hash

    again = client.post(path, data={
            'csrf_token': csrf(client, link),
            'email': 'lenoir@garage.example',
            'password': 'Other-portal-2026', 'confirm': 'Other-portal-2026'})
    assert again.status_code == 400, "a reset link works once"
    assert 'not valid or has expired' in text(again)


def login_link(message):
    return re.search(r'http://localhost(/\S+/portal/login/[\w.]+)',
        body_of(message)).group(1)


def test_login_link_once(tryton_portal, mailbox, root):
    from trytond.modules.dunning_portal.web_user import sign_link
    from trytond.wsgi import app
    portal_on_localhost(tryton_portal)
    party = make_customer("Garage Petit", 'petit@garage.example')
    make_invoice(tryton_portal, party, '210.00', INVOICE_DATE)
    run_dunning(day(0))
    message, = mailbox.messages
    link = login_link(message)
    WebUser = Model.get('web.user')
    assert not WebUser.find([('party', '=', party.id)])

    customer = Client(app)
    page = customer.get(link)
    assert page.status_code == 200, "a scanner's GET uses nothing up"
    assert 'Welcome, Garage Petit' in text(page)
    assert customer.get(root).status_code == 303, "not logged in yet"
    opened = customer.post(link, data={
            'csrf_token': CSRF.search(text(page)).group(1)})
    assert opened.status_code == 303
    balance = customer.get(root)
    assert balance.status_code == 200
    assert '$210.00' in text(balance)
    user, = WebUser.find([('party', '=', party.id)])
    assert user.email == 'petit@garage.example' and user.active
    assert not user.password_hash, "a link sets no password"

    UsedLink = Model.get('web.user.portal_link')
    used, = UsedLink.find([])
    token = link.rsplit('/', 1)[1]
    assert used.party == party and used.user == user
    assert used.token_hash != token and len(used.token_hash) == 64

    other = Client(app)
    for method in (other.get, other.post):
        refused = method(link, data={'csrf_token': csrf(other, root + 'login')}
            if method == other.post else None)
        assert refused.status_code == 410
        assert 'already used' in text(refused)
        assert 'href="%slogin"' % root in text(refused)
    assert other.get(root).status_code == 303

    run_dunning(day(6))
    second = login_link(mailbox.messages[-1])
    assert second != link, "each reminder has a link of its own"

    expired = signed(tryton_portal['config'], sign_link, party.id,
        dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    page = other.get(root + 'login/' + expired)
    assert page.status_code == 410
    assert 'expired' in text(page)

    forged = second[:-1] + ('0' if second[-1] != '0' else '1')
    other_party = second.rsplit('/', 1)[1].split('.', 1)[1]
    for bad in [forged, f'{party.id + 1}.{other_party}', 'garbage']:
        page = other.get(root + 'login/' + bad.rsplit('/', 1)[-1])
        assert page.status_code == 400, bad
        assert 'not valid' in text(page) or 'incomplete' in text(page)
    assert other.get(root).status_code == 303
    assert len(UsedLink.find([])) == 1


def test_csrf(garages, client, root):
    lenoir, overdue = garages['lenoir'], garages['overdue']
    log_in(client, root, 'lenoir@garage.example')
    for data in [{}, {'csrf_token': 'forged-' + 'x' * 36}]:
        refused = client.post(root + 'preferences',
            data=dict(data, portal='on'))
        assert refused.status_code == 400
        assert 'Reload the page' in text(refused)
        refused = client.post(root + f'invoices/{overdue.id}/dispute',
            data=dict(data, reason="Never delivered"))
        assert refused.status_code == 400
    lenoir.reload()
    assert lenoir.dunning_email_consent and lenoir.dunning_sms_consent
    Dunning = Model.get('account.dunning')
    assert not Dunning.find([('blocked', '=', True)])
    Task = Model.get('account.dunning.task')
    assert not Task.find([])
    logged_out = Client(client.application)
    assert logged_out.post(root + 'login', data={
            'email': 'lenoir@garage.example',
            'password': PASSWORD}).status_code == 400


def portal_rules():
    "The portal's routes with an id in their path"
    from trytond.wsgi import app
    for rule in app.url_map.iter_rules():
        if (rule.rule.startswith('/<database_name>/portal/')
                and any(c.__class__.__name__ == 'IntegerConverter'
                    for c in rule._converters.values())):
            yield rule


def test_other_customers_records_are_404(garages, client, root):
    "Garage Lenoir tries Garage Martin's ids on every portal route"
    martin = garages['martin']
    run_dunning(day(10))
    Message = Model.get('account.dunning.message')
    notice, = Message.find([
            ('party', '=', martin.id), ('channel', '=', 'portal')])
    theirs = {
        'invoice_id': [garages['martin_open'].id, garages['martin_paid'].id],
        'line_id': [payment_line(martin).id],
        'message_id': [notice.id],
        }
    log_in(client, root, 'lenoir@garage.example')
    token = csrf(client, root + 'preferences')
    rules = list(portal_rules())
    names = {rule.rule for rule in rules}
    assert {'/<database_name>/portal/invoices/<int:invoice_id>/dispute',
        '/<database_name>/portal/invoices/<int:invoice_id>.pdf',
        '/<database_name>/portal/payments/<int:line_id>/receipt.pdf',
        } <= names
    tried = 0
    for rule in rules:
        args = [a for a in rule.arguments if a != 'database_name']
        nowhere = {a: 10 ** 9 for a in args}
        samples = [dict(nowhere, **{a: value}) for a in args
            for value in theirs.get(a, [])]
        for method in sorted(rule.methods & {'GET', 'POST'}):
            def fetch(values):
                path = rule.rule.replace('/<database_name>/portal/', root)
                for name, value in values.items():
                    path = re.sub(rf'<int:{name}>', str(value), path)
                if method == 'GET':
                    return client.get(path)
                return client.post(path, data={
                        'csrf_token': token, 'reason': "Not ours",
                        'amount': '1.00'})
            missing = fetch(nowhere)
            assert missing.status_code == 404, rule.rule
            for values in samples:
                response = fetch(values)
                assert response.status_code == 404, (rule.rule, values)
                assert response.get_data() == missing.get_data(), (
                    "the same page as for what does not exist")
                assert 'Martin' not in text(response)
                tried += 1
    assert tried >= 5
    Dunning = Model.get('account.dunning')
    assert not Dunning.find([('blocked', '=', True)]), "nothing disputed"
    notice.reload()
    assert not notice.portal_read_at, "nor their notice read"


def test_dispute_blocks_dunning_and_tells_accountant(tryton_portal, client,
        root, mailbox):
    party = make_customer("Garage Blanc", 'blanc@garage.example')
    contested = make_invoice(tryton_portal, party, '400.00', INVOICE_DATE)
    other = make_invoice(tryton_portal, party, '150.00', INVOICE_DATE)
    make_portal_user(party, 'blanc@garage.example')
    log_in(client, root, 'blanc@garage.example')
    path = f'invoices/{contested.id}/dispute'
    form = client.get(root + path)
    assert form.status_code == 200
    assert '<textarea id="reason" name="reason"' in text(form)
    assert '<label for="reason">' in text(form)

    Dunning = Model.get('account.dunning')
    Task = Model.get('account.dunning.task')
    for reason in ['', '   ', 'x' * 2001]:
        refused = post(client, root, path, {'reason': reason})
        assert refused.status_code == 400
        assert 'role="alert"' in text(refused)
        assert not Dunning.find([('blocked', '=', True)])
        assert not Task.find([])
    assert 'reason is required' in text(post(client, root, path,
            {'reason': ''}))

    done = post(client, root, path,
        {'reason': "Brake pads returned on 5 March, credit note expected"})
    assert done.status_code == 200
    assert 'disputed' in text(done)
    dunning, = Dunning.find([('blocked', '=', True)])
    assert dunning.line.move == contested.move
    assert dunning.block_reason == (
        "Brake pads returned on 5 March, credit note expected")
    assert dunning.block_until is None
    task, = Task.find([])
    assert task.kind == 'portal_dispute' and task.party == party
    assert task.state == 'open'
    assert contested.number in task.note and 'Brake pads' in task.note
    assert task.amount == Decimal('400.00')
    Audit = Model.get('account.dunning.audit')
    assert [a.reason for a in Audit.find([
                ('party', '=', party.id), ('kind', '=', 'dispute')])] == [
        "Brake pads returned on 5 March, credit note expected"]

    page = text(client.get(root))
    assert re.search(rf'data-invoice="{contested.id}" data-status="disputed"',
        page)
    assert f'invoices/{contested.id}/dispute' not in page
    again = post(client, root, path, {'reason': "Again"})
    assert again.status_code == 400
    assert 'already disputed' in text(again)
    assert len(Task.find([])) == 1

    run_dunning(day(3))
    Message = Model.get('account.dunning.message')
    message, = Message.find([('party', '=', party.id)])
    assert [d.line.move for d in message.dunnings] == [other.move], (
        "the reminder is for the other invoice only")
    assert message.amount == Decimal('150.00')
    email, = mailbox.messages
    assert '$150.00' in email['Subject'] + body_of(email)


def test_preferences_change_consents(garages, client, root):
    lenoir = garages['lenoir']
    log_in(client, root, 'lenoir@garage.example')
    page = text(client.get(root + 'preferences'))
    for channel in ['email', 'sms', 'portal']:
        assert re.search(rf'<input type="checkbox" id="channel-{channel}" '
            rf'name="{channel}" checked', page)
        assert f'<label for="channel-{channel}">' in page
    assert 'to lenoir@garage.example' in page

    saved = post(client, root, 'preferences', {'portal': 'on'})
    assert saved.status_code == 200
    assert 'Your preferences are saved' in text(saved)
    assert 'name="email" checked' not in text(saved)
    lenoir.reload()
    assert not lenoir.dunning_email_consent and lenoir.dunning_email_opt_out
    assert not lenoir.dunning_sms_consent and lenoir.dunning_portal_consent
    Consent = Model.get('account.dunning.consent')
    consents = Consent.find([('party', '=', lenoir.id)],
        order=[('id', 'ASC')])
    assert [(c.channel, c.state, c.source) for c in consents] == [
        ('email', 'withdrawn', 'form'), ('sms', 'withdrawn', 'form')]
    assert 'web user lenoir@garage.example' in consents[0].proof

    post(client, root, 'preferences', {'email': 'on', 'portal': 'on'})
    lenoir.reload()
    assert lenoir.dunning_email_consent and not lenoir.dunning_sms_consent
    assert len(Consent.find([('party', '=', lenoir.id)])) == 3


def test_portal_notice_banner_until_dismissed(garages, client, root,
        mailbox):
    lenoir, martin = garages['lenoir'], garages['martin']
    martin.dunning_portal_consent = False
    martin.save()
    run_dunning(day(10))
    Message = Model.get('account.dunning.message')
    notice, = Message.find([
            ('party', '=', lenoir.id), ('channel', '=', 'portal')])
    assert notice.state == 'sent' and notice.sent_at
    assert notice.recipient == 'lenoir@garage.example'
    assert not notice.portal_read_at
    assert Message.find([('party', '=', lenoir.id), ('channel', '=', 'email')])
    assert not Message.find([
            ('party', '=', martin.id), ('channel', '=', 'portal')]), (
        "no notice once the portal consent is withdrawn")
    assert Message.find([('party', '=', martin.id), ('channel', '=', 'email')])

    log_in(client, root, 'lenoir@garage.example')
    first = text(client.get(root))
    assert first.count('data-notice') == 1
    assert notice.subject in first
    assert f'notices/{notice.id}/dismiss' in first
    notice.reload()
    assert not notice.portal_read_at, "viewed is not dismissed"
    second = text(client.get(root))
    assert second.count('data-notice') == 1, "shown until dismissed"

    run_dunning(day(21))
    final, = Message.find([('party', '=', lenoir.id),
            ('channel', '=', 'portal'), ('id', '!=', notice.id)])
    both = text(client.get(root))
    assert both.index(f'data-notice="{final.id}"') < both.index(
        f'data-notice="{notice.id}"'), "the newest first"
    for message in [final, notice]:
        dismissed = post(client, root, f'notices/{message.id}/dismiss',
            form='')
        assert dismissed.status_code == 303
        message.reload()
        assert message.portal_read_at
    assert 'data-notice' not in text(client.get(root))


def test_amounts_and_dates_in_the_customers_language(tryton_portal, client,
        root):
    party = make_customer("Garage Dupont", 'dupont@garage.example',
        lang='fr')
    invoice = make_invoice(tryton_portal, party, '1250.00', INVOICE_DATE)
    make_portal_user(party, 'dupont@garage.example')
    log_in(client, root, 'dupont@garage.example')
    row = re.search(rf'<tr data-invoice="{invoice.id}".*?</tr>',
        text(client.get(root)), re.S).group(0)
    assert re.search(r'>1\s250,00\s\$<', row), "French grouping and comma"
    assert f'>01.04.{YEAR}<' in row, "the due date in Tryton's French format"
