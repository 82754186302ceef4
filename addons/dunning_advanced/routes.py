"""The opt-out link of every reminder: one click, no login."""
import datetime as dt
import html
from http import HTTPStatus

from trytond.i18n import gettext
from trytond.protocols.wrappers import (
    Response, with_pool, with_transaction)
from trytond.transaction import Transaction
from trytond.wsgi import app

from .consent import CHANNELS
from .message import read_token

PAGE = ('<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<title>{title}</title></head><body style="font-family:sans-serif;'
    'max-width:36em;margin:2em auto;padding:0 1em;color:#222">'
    '<h1 style="font-size:1.4em">{title}</h1>{body}</body></html>')
BUTTON = ('<form method="post">{action}<button type="submit" '
    'style="font-size:1em;padding:.5em 1em">{label}</button></form>')
RESUME = 'resume'
# What read_token says is wrong with a token: the message telling the
# customer, and the status of the page
REFUSALS = {
    'malformed token': ('malformed', HTTPStatus.BAD_REQUEST),
    'bad signature': ('forged', HTTPStatus.BAD_REQUEST),
    'expired token': ('expired', HTTPStatus.GONE),
    'unknown channel': ('unknown', HTTPStatus.NOT_FOUND),
    'unknown party': ('unknown', HTTPStatus.NOT_FOUND),
    }


def page(title, body, status=HTTPStatus.OK, lang='en'):
    return Response(
        PAGE.format(title=html.escape(title), body=body, lang=lang),
        status=status, content_type='text/html; charset=utf-8')


def request_lang(request, pool):
    "The browser's preferred one of the translated languages"
    Lang = pool.get('ir.lang')
    codes = [l.code for l in Lang.search([('translatable', '=', True)])]
    return request.accept_languages.best_match(codes, default='en')


def paragraph(text):
    return '<p>%s</p>' % html.escape(text)


def button(label, action=None):
    return BUTTON.format(label=html.escape(label), action=(
            '<input type="hidden" name="action" value="%s">'
            % html.escape(action) if action else ''))


@app.route('/<database_name>/dunning/opt-out/<token>',
    methods={'GET', 'POST'})
@with_pool
@with_transaction(context={'_check_access': False})
def opt_out(request, pool, token):
    """GET shows what the link stops and a button; POST (the button, or a
    mail client's RFC 8058 one-click unsubscribe) withdraws the consent to
    the token's channel, and POST with action=resume grants it again."""
    Consent = pool.get('account.dunning.consent')
    Party = pool.get('party.party')
    today = dt.datetime.now(dt.UTC).date()
    try:
        party_id, channel = read_token(token, today)
        if channel not in dict(CHANNELS):
            raise ValueError('unknown channel')
        parties = Party.search([('id', '=', party_id)], limit=1)
        if not parties:
            raise ValueError('unknown party')
    except ValueError as exception:
        reason, status = REFUSALS[str(exception)]
        lang = request_lang(request, pool)
        with Transaction().set_context(language=lang):
            return page(
                gettext('dunning_advanced.msg_opt_out_invalid_title'),
                paragraph(gettext(
                        f'dunning_advanced.msg_opt_out_{reason}')),
                status=status, lang=lang)
    party, = parties
    lang = party.lang.code if party.lang else 'en'
    with Transaction().set_context(language=lang):
        reminders = gettext(f'dunning_advanced.msg_opt_out_channel_{channel}')
        texts = {'party': party.rec_name, 'reminders': reminders}
        if request.method != 'POST':
            return page(
                gettext('dunning_advanced.msg_opt_out_confirm_title', **texts),
                paragraph(gettext(
                        'dunning_advanced.msg_opt_out_confirm', **texts))
                + button(gettext(
                        'dunning_advanced.msg_opt_out_button', **texts)),
                lang=lang)
        granted = request.form.get('action') == RESUME
        now = dt.datetime.now(dt.UTC)
        Consent.set_consent([party], channel, granted, 'opt_out_link',
            proof=f"address: {request.remote_addr}; "
            f"user agent: {request.user_agent.string}; "
            f"time: {now.isoformat(timespec='seconds')}")
        if granted:
            return page(
                gettext('dunning_advanced.msg_opt_out_resumed_title', **texts),
                paragraph(gettext(
                        'dunning_advanced.msg_opt_out_resumed', **texts)),
                lang=lang)
        return page(
            gettext('dunning_advanced.msg_opt_out_done_title', **texts),
            paragraph(gettext('dunning_advanced.msg_opt_out_done', **texts))
            + button(gettext(
                    'dunning_advanced.msg_opt_out_resume_button', **texts),
                RESUME),
            lang=lang)
