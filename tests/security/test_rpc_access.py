"""What a user with no group and an accountant read and write of our three
modules through the JSON-RPC of a real server, logged in as sao does."""
import base64
import json
import re
import threading
from pathlib import Path

import pytest
import requests
from proteus import Model
from werkzeug.serving import make_server

from conftest import free_port, signed, world

pytestmark = pytest.mark.live_server

MODULES = ['dunning_advanced', 'dunning_sms', 'dunning_portal']
PASSWORD = 'Rpc-access-2026-check'
SECRET_NAME = re.compile(r'secret|token|password|hash|key', re.I)
# Names that match but hold no credential: the outbox's idempotency key
# (party, channel, level and date, all readable elsewhere), Twilio's public
# identifier of an API key, and the SHA-256 of one-time login links already
# used, which no link can be made from.
NOT_SECRETS = {
    ('account.dunning.message', 'key'),
    ('account.configuration', 'sms_api_key_sid'),
    ('account.configuration.dunning_sms', 'sms_api_key_sid'),
    ('web.user.portal_link', 'token_hash'),
    }
# The accountant sets up dunning: the configuration of the reminders and of
# the SMS sender, the policies (procedures, levels, segments, fees, quiet
# hours, templates) and which contact mechanism receives reminders. The log,
# the outbox, consents and answers of customers are records of what
# happened: nobody rewrites them.
ACCOUNTANT_SCOPE = {
    'account.configuration',
    'account.configuration.dunning_sms',
    'account.dunning.procedure',
    'account.dunning.level',
    'account.dunning.segment',
    'account.dunning.procedure.segment',
    'account.dunning.procedure.segment-account.dunning.level',
    'account.dunning.quiet_hours',
    'account.dunning.template',
    'party.contact_mechanism',
    'party.party',
    'account.invoice.payment_term',
    }
LISTING = Path(__file__).resolve().parents[2] / 'var' / 'rpc-access.txt'


@pytest.fixture(scope='module')
def server():
    "One database with our three modules, served over HTTP in a thread"
    from trytond.modules.dunning_advanced.signing import current_key
    from trytond.wsgi import app
    for shop in world(MODULES):
        config = shop['config']
        Configuration = Model.get('account.configuration')
        configuration = Configuration(1)
        configuration.dunning_portal_url = 'http://localhost'
        configuration.sms_auth_token = 'b' * 32
        configuration.sms_api_key_secret = 'c' * 32
        configuration.save()
        # A key exists, as after the first reminder.
        signed(config, current_key)
        http = make_server('127.0.0.1', free_port(), app, threaded=True)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            yield shop, f'http://127.0.0.1:{http.port}/{config.database_name}/rpc/'
        finally:
            http.shutdown()
            thread.join()


def make_user(login, group_names):
    User = Model.get('res.user')
    Group = Model.get('res.group')
    user = User(name=login.title(), login=login)
    user.password = PASSWORD
    user.save()
    user.groups.clear()
    user.groups.extend(Group.find([('name', 'in', group_names)]))
    user.save()
    assert len(user.groups) == len(group_names)


class Session:
    "A JSON-RPC session opened by common.db.login, as sao opens it"

    def __init__(self, url, login):
        self.url = url
        self.http = requests.Session()
        user_id, session, *_ = self.call(
            'common.db.login', login, {'password': PASSWORD}, 'en')
        self.http.headers['Authorization'] = 'Session ' + base64.b64encode(
            f'{login}:{user_id}:{session}'.encode()).decode()

    def call(self, method, *params):
        "The result of the call, or None when the server refuses it"
        response = self.http.post(self.url, data=json.dumps({
                    'id': 1, 'method': method, 'params': params}),
            headers={'Content-Type': 'application/json'})
        # trytond answers 403 for a model its RPC does not serve
        if response.status_code == 403:
            return None
        assert response.status_code == 200, (method, response.text[:200])
        answer = response.json()
        return answer.get('result') if not answer.get('error') else None

    def refused(self, method, *params):
        response = self.http.post(self.url, data=json.dumps({
                    'id': 1, 'method': method, 'params': params}),
            headers={'Content-Type': 'application/json'})
        return bool(response.json().get('error'))


def our_fields():
    "{model: {field: type}} of the fields our modules define or add"
    Field = Model.get('ir.model.field')
    fields = {}
    for field in Field.find([('module', 'in', MODULES)]):
        fields.setdefault(field.model, {})[field.name] = field.ttype
    return fields


def access_of(session, fields):
    """{model: (record id, {field: value} read, [fields written])}"""
    access = {}
    for model, types in sorted(fields.items()):
        method = f'model.{model}.'
        ids = session.call(method + 'search', [], 0, 1, None, {}) or []
        if not ids:
            access[model] = (None, {}, [])
            continue
        names = sorted(types)
        rows = session.call(method + 'read', ids, names, {})
        if rows is None:
            rows = [{}]
            for name in names:
                row = session.call(method + 'read', ids, [name], {})
                if row:
                    rows[0][name] = row[0][name]
        values = {n: v for n, v in rows[0].items() if n in types}
        written = []
        for name, value in values.items():
            if types[name] in {'one2many', 'many2many'}:
                value = []
            if not session.refused(
                    method + 'write', ids, {name: value}, {}):
                written.append(name)
        access[model] = (ids[0], values, written)
    return access


def looks_secret(model, name, value):
    return ((model, name) not in NOT_SECRETS
        and SECRET_NAME.search(name) and value not in (None, '', []))


def test_rpc_access(server, record_property):
    shop, url = server
    make_user('nobody', [])
    make_user('accountant', [
            "Accounting", "Accounting Administration", "Dunning"])
    fields = our_fields()
    assert 'account.configuration' in fields
    lines, problems = [], []
    for login in ['nobody', 'accountant']:
        session = Session(url, login)
        access = access_of(session, fields)
        readable = sum(len(v[1]) for v in access.values())
        writable = sum(len(v[2]) for v in access.values())
        record_property(login, f'{readable} fields read, {writable} written')
        for model, (record, values, written) in access.items():
            for name in sorted(fields[model]):
                perms = ('r' if name in values else '-') + (
                    'w' if name in written else '-')
                lines.append(f'{login}\t{model}\t{name}\t{perms}'
                    + ('' if record else '\tno record'))
                if name in values and looks_secret(model, name, values[name]):
                    problems.append(f'{login} reads {model}.{name}')
            if written and (login == 'nobody'
                    or model not in ACCOUNTANT_SCOPE):
                problems.append(f'{login} writes {model}: {written}')
    LISTING.parent.mkdir(exist_ok=True)
    LISTING.write_text('\n'.join(lines) + '\n')
    record_property('listing', str(LISTING))
    assert not problems, '\n'.join(problems)
