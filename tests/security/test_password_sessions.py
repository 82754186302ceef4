"""Finding 4 of issue 15: a new password, by reset or by change, ends
every other session of the web user; the person who set it from a session
of their own stays logged in there."""
from urllib.parse import unquote

from proteus import Model
from werkzeug.test import Client

from portal_support import (  # noqa: F401
    PASSWORD, make_portal_user, tryton_portal)
from test_portal import (  # noqa: F401
    CSRF, garages, log_in, portal_on_localhost, post, reset_link, root,
    text)

NEW_PASSWORD = 'Nouveau-garage-2026'


def logged_in_clients(root, count, password=PASSWORD):
    "count browsers of Garage Lenoir, each logged in"
    from trytond.wsgi import app
    clients = [Client(app) for _ in range(count)]
    for client in clients:
        assert log_in(client, root, 'lenoir@garage.example',
            password).status_code == 303
        assert client.get(root).status_code == 200
    return clients


def reset_from(client, root, mailbox):
    "Ask a reset link and choose NEW_PASSWORD with it, from client"
    mailbox.messages.clear()
    assert post(client, root, 'reset',
        {'email': 'lenoir@garage.example'}).status_code == 200
    message, = mailbox.messages
    link = reset_link(message)
    page = client.get(link)
    path, _, query = link.partition('?')
    done = client.post(path, data={
            'csrf_token': CSRF.search(text(page)).group(1),
            'email': unquote(query.partition('=')[2]),
            'password': NEW_PASSWORD, 'confirm': NEW_PASSWORD})
    assert done.status_code == 303


def test_reset_ends_the_other_sessions(garages, root, mailbox):
    from trytond.wsgi import app
    portal_on_localhost(garages['world'])
    phone, laptop = logged_in_clients(root, 2)

    reset_from(Client(app), root, mailbox)
    assert phone.get(root).status_code == 303, (
        "a reset from elsewhere ends the phone's session")
    assert laptop.get(root).status_code == 303

    phone, laptop = logged_in_clients(root, 2, NEW_PASSWORD)
    reset_from(laptop, root, mailbox)
    assert laptop.get(root).status_code == 200, (
        "who reset it from a session keeps that session")
    assert phone.get(root).status_code == 303, "the others end"


def test_change_by_the_accountant_ends_every_session(garages, root):
    phone, laptop = logged_in_clients(root, 2)
    WebUser = Model.get('web.user')
    user, = WebUser.find([('email', '=', 'lenoir@garage.example')])
    user.password = NEW_PASSWORD
    user.save()
    assert phone.get(root).status_code == 303
    assert laptop.get(root).status_code == 303
    assert log_in(Client(phone.application), root, 'lenoir@garage.example',
        NEW_PASSWORD).status_code == 303
