"""Finding 7 of issue 15, the password policy: the portal and the client
refuse a password that is short or among the most common ones, saying so
in the customer's language."""
import html

import pytest
from proteus import Model

from portal_support import make_portal_user, tryton_portal  # noqa: F401
from test_portal import (  # noqa: F401
    CSRF, client, garages, portal_on_localhost, post, reset_link, root,
    text)

COMMON = {
    'en': "This password is one of the most common",
    'fr': "Ce mot de passe est l'un des plus courants",
    }


def choose(client, link, password, language):
    path = link.partition('?')[0]
    page = client.get(link, headers={'Accept-Language': language})
    return client.post(path, headers={'Accept-Language': language}, data={
            'csrf_token': CSRF.search(text(page)).group(1),
            'email': 'lenoir@garage.example',
            'password': password, 'confirm': password})


def test_reset_refuses_common_passwords(garages, client, root, mailbox):
    Lang = Model.get('ir.lang')
    Lang.click(Lang.find([('code', '=', 'fr')]), 'load_translations')
    portal_on_localhost(garages['world'])
    post(client, root, 'reset', {'email': 'lenoir@garage.example'})
    link = reset_link(mailbox.messages[-1])
    for password, language in [('Password123', 'en'), ('motdepasse1', 'fr'),
            ('AZERTYUIOP', 'fr')]:
        refused = choose(client, link, password, language)
        assert refused.status_code == 400, password
        assert COMMON[language] in html.unescape(text(refused)), password
    short = choose(client, link, 'Gar-26', 'fr')
    assert short.status_code == 400
    assert "au moins 8 caractères" in html.unescape(text(short))
    done = choose(client, link, 'Cric-jaune-vidange-26', 'fr')
    assert done.status_code == 303, "the link still works after refusals"


def test_client_refuses_common_passwords(garages):
    WebUser = Model.get('web.user')
    user, = WebUser.find([('email', '=', 'lenoir@garage.example')])
    user.password = 'Password123'
    with pytest.raises(Exception, match="one of the most common"):
        user.save()
