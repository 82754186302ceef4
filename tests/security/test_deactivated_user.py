"""Finding 3 of issue 15: a web user the accountant deactivated stays
deactivated. A reminder's one-time link neither re-creates nor re-activates
it, logs nobody in, and says the access is closed and whom to contact, in
the customer's language."""
import datetime as dt
import html

import pytest
from proteus import Model
from werkzeug.test import Client

from conftest import make_customer, signed
from portal_support import make_portal_user, tryton_portal  # noqa: F401
from test_portal import CSRF, root, text  # noqa: F401

CONTACT = "Service clients, 04 72 00 00 00"


@pytest.fixture
def closed(tryton_portal):
    """Two customers whose web users the accountant deactivated: Garage
    Lenoir had a password, Garage Dupont (French) only the user its first
    link made"""
    Lang = Model.get('ir.lang')
    Lang.click(Lang.find([('code', '=', 'fr')]), 'load_translations')
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.dunning_contact = CONTACT
    configuration.save()
    lenoir = make_customer("Garage Lenoir", 'lenoir@garage.example')
    dupont = make_customer("Garage Dupont", 'dupont@garage.example', 'fr')
    WebUser = Model.get('web.user')
    lenoir_user = make_portal_user(lenoir, 'lenoir@garage.example')
    dupont_user = WebUser(party=dupont, email='dupont@garage.example')
    dupont_user.save()
    for user in (lenoir_user, dupont_user):
        user.active = False
        user.save()
    return {'world': tryton_portal, 'lenoir': lenoir, 'dupont': dupont}


def link(config, party):
    from trytond.modules.dunning_portal.web_user import sign_link
    return 'login/' + signed(config, sign_link, party.id,
        dt.datetime.now(dt.UTC) + dt.timedelta(days=1))


def web_users(party):
    WebUser = Model.get('web.user')
    return WebUser.find([
            ('party', '=', party.id), ('active', 'in', [True, False])])


def sessions(config):
    "The keys of the web users' sessions (no model reads them over RPC)"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(config.database_name, 0):
        Session = Pool(config.database_name).get('web.user.session')
        return [s.key for s in Session.search([])]


def test_link_of_a_deactivated_user_opens_nothing(closed, root):
    from trytond.wsgi import app
    config = closed['world']['config']
    for party, closed_words, contact_words in [
            (closed['lenoir'], "Your access to this portal is closed",
                f"To see your account or pay your invoices, contact "
                f"{CONTACT}."),
            (closed['dupont'], "Votre accès à ce portail est fermé",
                f"Pour consulter votre compte ou payer vos factures, "
                f"contactez {CONTACT}."),
            ]:
        customer = Client(app)
        path = root + link(config, party)
        page = customer.get(path)
        assert page.status_code == 403, party.name
        words = html.unescape(text(page))
        assert closed_words in words and contact_words in words
        csrf = CSRF.search(text(customer.get(root + 'login'))).group(1)
        opened = customer.post(path, data={'csrf_token': csrf})
        assert opened.status_code == 403, (
            f"{party.name}: the link must not log in a deactivated user")
        assert closed_words in html.unescape(text(opened))
        assert customer.get(root).status_code == 303, "not logged in"
        users = web_users(party)
        assert len(users) == 1, "no web user made again"
        assert not users[0].active, "still deactivated"
    assert not sessions(config), "no session created"

