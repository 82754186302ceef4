"""The key that signs the links of reminders (login, opt-out, survey):
nobody reads it through the client, only administrators rotate it, and the
links signed before a rotation keep working for the grace period only."""
import datetime as dt
import re

import pytest
from proteus import Model, Wizard
from werkzeug.test import Client

from conftest import make_customer, signed, world

SECRET_NAME = re.compile(r'secret|token|password|hash|key', re.I)
SECRET_VALUE = re.compile(r'[0-9a-f]{32,}|[A-Za-z0-9_\-+/=]{40,}')
ROTATE = 'account.dunning.signing_key.rotate'


@pytest.fixture(scope='module')
def shop():
    "One database for the module, with a customer and two users"
    yield from world('dunning_advanced')


@pytest.fixture(scope='module')
def users(shop):
    User = Model.get('res.user')
    Group = Model.get('res.group')
    nobody = User(name="Nobody", login='nobody')
    nobody.save()
    nobody.groups.clear()
    nobody.save()
    accountant = User(name="Accountant", login='accountant')
    accountant.groups.extend(Group.find([('name', 'in', [
                    "Accounting", "Accounting Administration",
                    "Dunning"])]))
    accountant.save()
    return {'nobody': nobody.id, 'accountant': accountant.id}


@pytest.fixture(scope='module')
def party(shop):
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.dunning_portal_url = 'http://localhost'
    configuration.save()
    return make_customer("Garage Roux", 'roux@garage.example')


def as_user(config, user_id, func):
    """func(pool) as user_id, with the access checks of a call from the
    client; the transaction is rolled back"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(config.database_name)
    with Transaction().start(config.database_name, user_id) as transaction:
        User = pool.get('res.user')
        context = User.get_preferences(context_only=True)
        with transaction.set_context(context, _check_access=True):
            try:
                return func(pool)
            finally:
                transaction.rollback()


def opt_out_link(config, party):
    "The opt-out link of a reminder, as the send signs it"
    from trytond.modules.dunning_advanced.message import opt_out_url

    def sign():
        from trytond.pool import Pool
        Configuration = Pool().get('account.configuration')
        return opt_out_url(Configuration(1), party.id, 'email')
    return '/' + config.database_name + signed(config, sign).split(
        'localhost', 1)[1]


def opt_out_status(link):
    from trytond.wsgi import app
    return Client(app).get(link).status_code


def test_no_group_user_reads_no_secret(shop, users, party):
    config = shop['config']
    link = opt_out_link(config, party)
    assert opt_out_status(link) == 200, "the reminder's link works"

    def read_everything(pool):
        Configuration = pool.get('account.configuration')
        names = sorted(Configuration.fields_get())
        return Configuration.read([1], names)[0]
    for login in ['nobody', 'accountant']:
        values = as_user(config, users[login], read_everything)
        leaked = {name: value for name, value in values.items()
            if isinstance(value, str) and value and (
                SECRET_NAME.search(name) or SECRET_VALUE.fullmatch(value))}
        assert not leaked, f"{login} reads secrets: {sorted(leaked)}"


def set_retired(config, days_ago):
    "Move back the retirement of the retired keys by days_ago days"
    from sql import Null, Table
    from trytond.transaction import Transaction
    table = Table('dunning_signing_key')
    with Transaction().start(config.database_name, 0) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute(*table.update([table.retired],
                [dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)],
                where=table.retired != Null))
        transaction.commit()


def test_rotation_keeps_old_links_for_the_grace_period(shop, users, party):
    from trytond.modules.dunning_advanced.signing import GRACE_DAYS
    config = shop['config']
    before = opt_out_link(config, party)
    rotation = Wizard(ROTATE)
    assert rotation.form.grace_days == GRACE_DAYS
    rotation.execute('rotate')
    after = opt_out_link(config, party)
    assert after != before
    assert opt_out_status(before) == 200, "still in the grace period"
    assert opt_out_status(after) == 200

    set_retired(config, GRACE_DAYS - 1)
    assert opt_out_status(before) == 200, "the last day of grace"
    set_retired(config, GRACE_DAYS + 1)
    assert opt_out_status(before) == 400, "refused after the grace period"
    assert opt_out_status(after) == 200, "the new key's links work"

    Audit = Model.get('account.dunning.audit')
    User = Model.get('res.user')
    entry = Audit.find([('kind', '=', 'signing_key_rotated')])[0]
    admin, = User.find([('login', '=', 'admin')])
    assert entry.user == admin
    assert entry.timestamp
    assert not SECRET_VALUE.search(entry.reason or ''), "never the key"


def test_only_an_administrator_rotates(shop, users, party):
    from trytond.exceptions import UserError
    from trytond.model.exceptions import AccessError
    config = shop['config']
    Audit = Model.get('account.dunning.audit')
    rotations = len(Audit.find([('kind', '=', 'signing_key_rotated')]))
    link = opt_out_link(config, party)

    def rotate_by_rpc(pool):
        RotateKey = pool.get(ROTATE, type='wizard')
        with pytest.raises(AccessError):
            RotateKey.check_access()
        # A call from inside the server skips the action's groups: the
        # wizard checks again.
        Session = pool.get('ir.session.wizard')
        session, = Session.create([{}])
        with pytest.raises(UserError):
            RotateKey(session.id).transition_rotate()
        return True
    for login in ['nobody', 'accountant']:
        assert as_user(config, users[login], rotate_by_rpc)
    assert opt_out_link(config, party) == link, "the key did not change"
    assert len(Audit.find([('kind', '=', 'signing_key_rotated')])) == (
        rotations)


def test_first_key_made_while_reading(shop):
    """A portal page reads in a read-only transaction: the key it makes on
    first use signs its links, once, and the next request accepts them"""
    from sql import Table
    from trytond.modules.dunning_advanced import signing
    from trytond.transaction import Transaction
    database = shop['config'].database_name
    company, = Model.get('company.company').find([])
    with Transaction().start(database, 0) as transaction:
        transaction.connection.cursor().execute(
            *Table('dunning_signing_key').delete())
        transaction.commit()
    with Transaction().start(database, 0, readonly=True,
            context={'company': company.id}):
        first = signing.sign('party-1')
        assert signing.sign('party-1') == first, "one key, not one per link"
    with Transaction().start(database, 0, readonly=True):
        assert signing.verify('party-1', first)
