"""Finding 7 of issue 15, the portal's risks to close: the session cookie
stays Secure behind a TLS proxy unless the configuration says otherwise."""
from werkzeug.test import Client

from portal_support import make_portal_user, tryton_portal  # noqa: F401
from test_portal import (  # noqa: F401
    client, garages, log_in, portal_config, root)


def set_cookies(response):
    "The attributes of each cookie the response sets, by cookie name"
    cookies = {}
    for header in response.headers.getlist('Set-Cookie'):
        name, _, rest = header.partition('=')
        cookies[name] = {a.strip().split('=')[0].lower()
            for a in rest.split(';')[1:]}
    return cookies


def test_session_cookie_secure_behind_a_tls_proxy(
        garages, client, root, portal_config):
    "A TLS proxy speaks plain http to trytond: the cookie stays Secure"
    from trytond.wsgi import app
    done = log_in(client, root, 'lenoir@garage.example')
    assert done.status_code == 303
    cookies = set_cookies(done)
    assert 'secure' in cookies['dunning_portal_session'], (
        "Secure whatever the scheme trytond sees")
    assert 'httponly' in cookies['dunning_portal_session']
    assert 'secure' in cookies['dunning_portal_csrf']

    portal_config('secure_cookie', False)
    done = log_in(Client(app), root, 'lenoir@garage.example')
    assert done.status_code == 303
    assert 'secure' not in set_cookies(done)['dunning_portal_session'], (
        "a portal on http://localhost opts out by its configuration")
