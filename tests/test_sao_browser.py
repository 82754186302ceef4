"""An accountant in sao, Tryton's web client, in Debian's Chromium: logs in
on sao's login page and opens every screen of our three modules, as a list
and as a form, every notebook page of those forms (the party's among them),
every action they relate to and every wizard of ours up to its first form.

Any browser console error, page error, error dialog of the server, or
screen still "Processing" after 10 s fails the test. A screenshot of each
screen is written under var/sao-screens/<backend>/ for a person to look
at.

The screens are found in the database, not listed here: a menu, action or
wizard another module adds is opened too.
"""
import datetime as dt
import re
import threading
import time
from pathlib import Path

import pytest
from proteus import Model
from werkzeug.serving import make_server

from trytond import backend

from conftest import (
    YEAR, free_port, make_customer, make_invoice, run_dunning, world)
from portal_support import chromium, make_portal_user  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SAO = ROOT / 'var' / 'sao'
SCREENS_ROOT = ROOT / 'var' / 'sao-screens'
MODULES = ['dunning_advanced', 'dunning_sms', 'dunning_portal']
# What an accountant holds: the Accounting groups and the Dunning group,
# not Administration.
ACCOUNTANT_GROUPS = [
    'account.group_account', 'account.group_account_admin',
    'account_dunning.group_dunning']
LOGIN, PASSWORD = 'claire', 'Ledger-2026-sao'
SETTLE_TIMEOUT = 10  # s: longer than this on "Processing" fails
FIRST_RUN, LAST_RUN = dt.date(YEAR, 4, 21), dt.date(YEAR, 5, 21)

pytestmark = pytest.mark.live_server

# Sao's "Processing" notice is shown 3 s after a request starts and hidden
# when it ends; a view that fails to build never hides it. Keeping the
# pending ones tells it at once, without waiting for the notice to show.
TRACK_PROCESSING = """() => {
    const processing = Sao.common.processing;
    const show = processing.show.bind(processing);
    const hide = processing.hide.bind(processing);
    window.saoPending = new Set();
    processing.show = (timeout) => {
        const id = show(timeout);
        window.saoPending.add(id);
        return id;
    };
    processing.hide = (id) => {
        window.saoPending.delete(id);
        return hide(id);
    };
}"""

# Opens the first record of the current list as a form, or a new record
# where there is none and the accountant may create one.
OPEN_FORM = """() => {
    const tab = Sao.Tab.tabs.get_current();
    const screen = tab.screen;
    if (screen.current_view.view_type == 'form') {
        return 'form';
    }
    if (!screen.views.some(v => v.view_type == 'form') &&
            !screen.view_to_load.includes('form')) {
        return null;
    }
    if (screen.group.length) {
        screen.current_record = screen.group[0];
        screen.switch_view('form');
        return 'record';
    }
    if (Sao.common.MODELACCESS.get(screen.model_name).create) {
        tab.new_();
        return 'new';
    }
    return null;
}"""


@pytest.fixture
def tryton_all():
    "A fresh database with our three modules and the company's world"
    yield from world(MODULES)


@pytest.fixture
def sao_server(tryton_all):
    """trytond's WSGI application serving sao from var/sao, on a free
    port, in a thread; yields its base URL, ending with a slash"""
    from trytond.wsgi import SharedDataMiddlewareIndex, app
    assert (SAO / 'dist' / 'tryton-sao.js').exists(), (
        "sao is not installed: run make sao")
    static = SharedDataMiddlewareIndex(app, {'/': str(SAO)})
    server = make_server('127.0.0.1', free_port(), static, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.port}/'
    finally:
        server.shutdown()
        thread.join()


def make_accountant(config):
    User = Model.get('res.user')
    Group = Model.get('res.group')
    ModelData = Model.get('ir.model.data')
    Company = Model.get('company.company')
    company, = Company.find([])
    user = User(name="Claire Compta", login=LOGIN, password=PASSWORD)
    user.groups.extend(Group.find([('id', 'in', [
                    ModelData.get_id(*g.split('.'), config.context)
                    for g in ACCOUNTANT_GROUPS])]))
    user.companies.append(Company(company.id))
    user.company = Company(company.id)
    user.save()
    return user


def books(world):
    """Customers at several levels after two runs: dunnings, messages,
    audit entries, a task, a collection case and a fee"""
    parties = {}
    for name, email, days_late, amount in [  # at the last run
            ("Garage Lenoir", 'lenoir@garage.example', 50, '1250.00'),
            ("Atelier Martin", 'martin@atelier.example', 25, '480.00'),
            ("Fleet Services Ltd", None, 12, '2300.00'),
            ]:
        party = parties[name] = make_customer(name, email)
        # due 30 days after its date
        make_invoice(world, party, amount,
            LAST_RUN - dt.timedelta(days=days_late + 30))
    make_portal_user(parties["Atelier Martin"], 'martin@atelier.example')
    run_dunning(FIRST_RUN)
    run_dunning(LAST_RUN)


def screens(database, user_id):
    """What the accountant can open of our modules: [(kind, id, data)],
    kind 'menu' (an action of the menu), 'action' (an act_window related to
    a record) or 'wizard', data the record it is launched on"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(database)
    with Transaction().start(database, 0, readonly=True):
        Data = pool.get('ir.model.data')
        View = pool.get('ir.ui.view')
        IrModel = pool.get('ir.model')
        ours = {(d.model, d.db_id) for d in Data.search(
                [('module', 'in', MODULES)])}
        # The models we define or whose views we change
        models = {v.model for v in View.search([('module', 'in', MODULES)])
            if v.model} | {m.name for m in IrModel.search(
                [('module', 'in', MODULES)])}
    with Transaction().start(database, user_id, readonly=True):
        User = pool.get('res.user')
        # As sao asks: the menus and actions of the user's groups only.
        with Transaction().set_context(
                User.get_preferences(context_only=True),
                _check_access=True):
            found = _screens(pool, user_id, ours, models)
    return sorted(found, key=lambda s: (s[0], s[3]))


def _screens(pool, user_id, ours, models):
    Menu = pool.get('ir.ui.menu')
    Wizard = pool.get('ir.action.wizard')
    ActWindow = pool.get('ir.action.act_window')
    Keyword = pool.get('ir.action.keyword')
    User = pool.get('res.user')
    groups = set(User(user_id).groups)
    visible = {m.id: m for m in Menu.search([])}
    found = []
    for menu in visible.values():
        parent = menu.parent
        while parent and parent.id in visible:
            parent = parent.parent
        if parent or not menu.action:
            continue
        action = menu.action
        res_model = getattr(action, 'res_model', None)
        if (('ir.ui.menu', menu.id) in ours
                or res_model in models):
            found.append(('menu', menu.id, None, menu.complete_name))

    def first(model):
        Model = pool.get(model)
        records = Model.search([], limit=1)
        return {'model': model, 'id': records[0].id,
            'ids': [records[0].id]} if records else None

    for keyword in Keyword.search([('keyword', '=', 'form_relate')]):
        action = ActWindow.search(
            [('action', '=', keyword.action.id)])
        if not action or ('ir.action.act_window', action[0].id) not in ours:
            continue
        if keyword.action.groups and not set(keyword.action.groups) & groups:
            continue
        model = str(keyword.model).split(',')[0]
        found.append(('action', keyword.action.id, first(model),
                f"{model}: {keyword.action.name}"))
    for wizard in Wizard.search([]):
        if ('ir.action.wizard', wizard.id) not in ours:
            continue
        if wizard.groups and not set(wizard.groups) & groups:
            continue
        found.append(('wizard', wizard.action.id,
                first(wizard.model) if wizard.model else None,
                wizard.name))
    return found


class Sao:
    "The accountant's browser tab, watched for errors"

    def __init__(self, page, base, screens_dir):
        self.page = page
        self.base = base
        self.screens_dir = screens_dir
        self.errors = []
        self.requests = 0
        self.shots = 0
        page.on('console', self.console)
        page.on('pageerror',
            lambda error: self.errors.append(f"page error: {error}"))
        page.on('request', self.started)
        page.on('requestfinished', self.ended)
        page.on('requestfailed', self.ended)

    def console(self, message):
        if message.type != 'error':
            return
        url = message.location.get('url', '')
        # custom.js and custom.css are the site's optional additions to
        # sao, which sao does not ship; sao asks for the translation of the
        # language and of its territory (en.json, en_US.json) and uses the
        # one it finds, none for English, its source language.
        if (url.endswith(('/custom.js', '/custom.css'))
                or re.search(r'/locale/\w+\.json$', url)):
            return
        self.errors.append(f"console: {message.text} ({url})")

    def started(self, request):
        self.requests += 1

    def ended(self, request):
        self.requests -= 1

    def settle(self, what):
        "Wait until sao is idle; fail on errors or a stuck Processing"
        deadline = time.monotonic() + SETTLE_TIMEOUT
        quiet_since = None
        while True:
            busy = self.requests > 0 or self.page.evaluate(
                'window.saoPending ? window.saoPending.size : 0')
            now = time.monotonic()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since > 0.25:
                break
            if now > deadline:
                self.errors.append(
                    f"{what}: still Processing after {SETTLE_TIMEOUT} s")
                break
            self.page.wait_for_timeout(50)
        for selector, kind in [
                ('.error-dialog', "error dialog"),
                ('.warning-dialog', "warning dialog"),
                ('.message-dialog', "message dialog")]:
            dialog = self.page.locator(selector + ':visible')
            if dialog.count():
                self.errors.append(
                    f"{what}: {kind}: {dialog.first.inner_text()}")
                dialog.first.get_by_role('button').last.click()
        return not self.errors

    def shot(self, what):
        self.shots += 1
        name = re.sub(r'[^\w]+', '-', what).strip('-').lower()
        self.page.screenshot(
            path=self.screens_dir / f'{self.shots:03d}-{name[:80]}.png')

    def check(self, what):
        ok = self.settle(what)
        self.shot(what)
        assert ok, '\n'.join(self.errors)

    def login(self, database):
        page = self.page
        page.goto(f'{self.base}#{database}')
        # Where the server lists its databases (PostgreSQL) sao asks for
        # one in a list, as it does for any accountant with several.
        chooser = page.locator(
            'select#database:visible, input#database:visible')
        chooser.wait_for()
        if chooser.evaluate('e => e.tagName') == 'SELECT':
            chooser.select_option(database)
        page.locator('#login').fill(LOGIN)
        page.keyboard.press('Enter')
        password = page.locator('#ask-dialog-entry')
        password.fill(PASSWORD)
        page.keyboard.press('Enter')
        page.wait_for_function(
            'window.Sao && Sao.main_menu_screen'
            ' && Sao.Session.current_session'
            ' && Sao.Session.current_session.user_id')
        page.evaluate(TRACK_PROCESSING)
        self.check("menu")

    def close_all(self, what):
        # A new record opened to see its form is left unsaved.
        self.page.evaluate('''() => {
            for (const tab of Sao.Tab.tabs) {
                if (tab.screen && tab.screen.current_record
                        && tab.screen.current_record.id < 0) {
                    tab.screen.cancel_current();
                }
            }
            Sao.Tab.tabs.close(false);
        }''')
        self.settle(f"{what}: closing")
        assert not self.page.evaluate('Sao.Tab.tabs.length'), (
            f"{what}: a tab does not close")

    def pages(self, what, scope='#tabs .tab-pane.active'):
        "Every notebook page of the form shown, each once"
        tabs = self.page.locator(
            f'{scope} .form-notebook > .nav-tabs > li:visible > a')
        for i in range(tabs.count()):
            tab = tabs.nth(i)
            if not tab.is_visible():
                continue
            label = tab.inner_text().strip()
            tab.click()
            self.check(f"{what} / {label}")

    def form(self, what):
        "Every tab of the list, then a record of the last one as a form"
        domains = self.page.locator(
            '#tabs .tab-pane.active .tab-domain > .nav-tabs > li > a')
        for i in range(1, domains.count()):
            tab = domains.nth(i)
            label = tab.inner_text().strip()
            tab.click()
            self.check(f"{what} / {label}")
        opened = self.page.evaluate(OPEN_FORM)
        if not opened:
            return
        what = f"{what} ({opened})"
        self.check(what)
        self.pages(what)

    def open(self, kind, action_id, data, name, close=True):
        if kind == 'menu':
            # As sao's menu does
            self.page.evaluate('''(id) => {
                Sao.Action.exec_keyword('tree_open',
                    {model: 'ir.ui.menu', id: id}, null, false); }''',
                action_id)
        else:
            self.page.evaluate('''([id, data]) => {
                Sao.Action.execute(id, data,
                    Sao.Session.current_session.context); }''',
                [action_id, data])
        self.check(name)
        wizard = self.page.locator('.wizard-dialog.in')
        current = self.page.evaluate('''() => {
            const tab = Sao.Tab.tabs.get_current();
            return tab ? (tab.wizard ? 'wizard' : 'screen') : null; }''')
        if wizard.count():
            assert wizard.locator('.form:visible').count(), (
                f"{name}: the wizard shows no form")
            self.pages(name, '.wizard-dialog.in')
            if not close:
                return
            # Tryton's wizards put Cancel first
            wizard.last.locator('.modal-footer button').first.click()
            self.settle(f"{name}: closing")
        elif current == 'wizard':
            self.pages(name)
        elif current == 'screen':
            self.form(name)
        else:
            assert kind != 'wizard', f"{name}: the wizard shows nothing"
        self.close_all(name)
    def dry_run(self, action_id):
        "The result of the Run Dunning wizard's dry run, as sao shows it"
        self.open('wizard', action_id, None, "Run Dunning", close=False)
        wizard = self.page.locator('.wizard-dialog.in')
        wizard.locator('.modal-footer button.btn-primary').click()
        self.check("Run Dunning / dry run")
        summary = wizard.locator('textarea').input_value()
        wizard.locator('.modal-footer button').first.click()
        self.settle("Run Dunning / dry run: closing")
        return summary


def test_every_screen_opens_for_an_accountant(
        tryton_all, mailbox, sao_server, chromium, record_property):
    world = tryton_all
    config = world['config']
    books(world)
    accountant = make_accountant(config)
    found = screens(config.database_name, accountant.id)
    assert {kind for kind, *_ in found} == {'menu', 'action', 'wizard'}

    # One folder per backend: make test runs both at once
    screens_dir = SCREENS_ROOT / backend.name
    screens_dir.mkdir(parents=True, exist_ok=True)
    for old in screens_dir.glob('*.png'):
        old.unlink()
    page = chromium.new_page(viewport={'width': 1400, 'height': 900})
    sao = Sao(page, sao_server, screens_dir)
    sao.login(config.database_name)
    without = []
    for kind, action_id, data, name in found:
        if kind == 'action' and not data:
            # Related to a record and there is none to relate it to
            without.append(name)
        else:
            sao.open(kind, action_id, data, name)

    ModelData = Model.get('ir.model.data')
    Wizard = Model.get('ir.action.wizard')
    run_wizard = Wizard(ModelData.get_id(
            'dunning_advanced', 'wizard_run_dunning', config.context))
    summary = sao.dry_run(run_wizard.action.id)
    assert ("- Fleet Services Ltd: Collections by Letter, $2,300.00"
        in summary), summary
    record_property('sao_screens', sao.shots)
    if without:
        record_property('sao_not_opened', ', '.join(without))
    assert not sao.errors, '\n'.join(sao.errors)
    print(f"sao: {sao.shots} screens opened, screenshots in {screens_dir}")
