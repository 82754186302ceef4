"""Logging in to the portal: email and password, the one-time link of a
reminder, logging out and resetting a forgotten password."""
import datetime as dt
from http import HTTPStatus
from urllib.parse import urlsplit

from werkzeug.utils import redirect

from trytond.exceptions import RateLimitException, UserError
from trytond.i18n import gettext
from trytond.transaction import Transaction

from .portal import route
from .web_user import read_link


def safe_next(portal, value):
    "value when it is a path of this portal, else the balance page"
    value = value or ''
    parts = urlsplit(value)
    if (not parts.scheme and not parts.netloc and '\\' not in value
            and parts.path.startswith(portal.root)
            and not parts.path.startswith('//')):
        return value
    return portal.root


@route('/login', methods=('GET', 'POST'), login=False)
def login(request, pool, portal):
    User = pool.get('web.user')
    next_ = safe_next(portal, request.values.get('next'))
    email = (request.form.get('email') or '').strip()
    if request.method != 'POST':
        if portal.user:
            return redirect_to(portal, next_)
        return portal.render('login.html', next=next_, email='',
            notice=request.args.get('notice'))
    try:
        user = User.authenticate(email, request.form.get('password') or '')
    except RateLimitException:
        response = portal.render('login.html',
            status=HTTPStatus.TOO_MANY_REQUESTS, next=next_, email=email,
            error=gettext('dunning_portal.msg_login_rate_limited'))
        response.headers['Retry-After'] = str(User.login_retry_after(email))
        return response
    if user and user.party:
        portal.login(user)
        return redirect_to(portal, next_)
    # The same words whether the email exists or not.
    return portal.render('login.html', status=HTTPStatus.UNAUTHORIZED,
        next=next_, email=email,
        error=gettext('dunning_portal.msg_login_invalid'))


def redirect_to(portal, path):
    return redirect(path, code=HTTPStatus.SEE_OTHER)


@route('/logout', methods=('POST',), login=False)
def logout(request, pool, portal):
    portal.logout()
    return portal.redirect('login?notice=logged_out')


@route('/login/<token>', methods=('GET', 'POST'), login=False)
def login_link(request, pool, portal, token):
    """The link of a reminder. GET asks to confirm with a button, so that
    a mail scanner opening links does not use it up; POST logs in."""
    Party = pool.get('party.party')
    User = pool.get('web.user')
    UsedLink = pool.get('web.user.portal_link')
    try:
        party_id = read_link(token, dt.datetime.now(dt.UTC))
        parties = Party.search([('id', '=', party_id)], limit=1)
        if not parties:
            raise ValueError('forged')
    except ValueError as exception:
        reason = str(exception)
        return portal.render('link_invalid.html',
            status=HTTPStatus.GONE if reason == 'expired'
            else HTTPStatus.BAD_REQUEST,
            message=gettext(f'dunning_portal.msg_link_{reason}'))
    party, = parties
    if User.portal_closed(party):
        return access_closed(pool, portal, party)
    used = UsedLink.search([
            ('token_hash', '=', UsedLink.digest(token))], limit=1)
    if used:
        return link_used(portal)
    if request.method != 'POST':
        with portal.speak_to(party):
            return portal.render('link_confirm.html', party=party)
    user = User.portal_user(party)
    try:
        consumed = UsedLink.consume(token, party, user)
    except UserError:
        # Another click of the same link won the unique hash meanwhile.
        Transaction().rollback()
        consumed = False
    if not consumed:
        return link_used(portal)
    portal.login(user)
    return portal.redirect()


def access_closed(pool, portal, party):
    "The page of a link whose party's web users were all deactivated"
    Configuration = pool.get('account.configuration')
    with portal.speak_to(party):
        return portal.render('access_closed.html', status=HTTPStatus.FORBIDDEN,
            contact=Configuration(1).dunning_contact
            or portal.company.rec_name)


def link_used(portal):
    return portal.render('link_invalid.html', status=HTTPStatus.GONE,
        message=gettext('dunning_portal.msg_link_used'))


@route('/reset', methods=('GET', 'POST'), login=False)
def reset(request, pool, portal):
    """Ask for a password reset: web_user emails a link to the reset page.
    The answer is the same whether the email has an account or not."""
    User = pool.get('web.user')
    if request.method != 'POST':
        return portal.render('reset.html', sent=False, email='')
    email = (request.form.get('email') or '').strip()
    if email:
        User.reset_password(User.reset_password_users(email))
    return portal.render('reset.html', sent=True, email=email)


@route('/reset/<token>', methods=('GET', 'POST'), login=False)
def reset_token(request, pool, portal, token):
    "The page a reset email links to: choose a new password"
    User = pool.get('web.user')
    email = request.values.get('email') or ''
    if request.method != 'POST':
        return portal.render('reset_password.html', token=token,
            email=email)
    password = request.form.get('password') or ''
    error = None
    users = User.search([('email', '=', email.lower())], limit=1)
    try:
        User.validate_portal_password(password, users)
    except UserError as exception:
        error = exception.message
    if not error and password != request.form.get('confirm'):
        error = gettext('dunning_portal.msg_password_mismatch')
    if error:
        return portal.render('reset_password.html',
            status=HTTPStatus.BAD_REQUEST, token=token, email=email,
            error=error)
    # Whoever resets from a session of their own stays logged in there.
    with Transaction().set_context(web_user_session=portal.session_key):
        done = User.set_password_token(email, token, password)
    if not done:
        return portal.render('reset_password.html',
            status=HTTPStatus.BAD_REQUEST, token=token, email=email,
            error=gettext('dunning_portal.msg_reset_invalid'))
    return portal.redirect('login?notice=password_set')
