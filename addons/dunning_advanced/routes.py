"""The opt-out link of every reminder: one click, no login."""
import datetime as dt
import html
from http import HTTPStatus

from trytond.i18n import gettext
from trytond.protocols.wrappers import (
    Response, with_pool, with_transaction)
from trytond.wsgi import app

from .message import read_token

PAGE = ('<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<title>{title}</title></head><body style="font-family:sans-serif;'
    'max-width:36em;margin:2em auto;padding:0 1em;color:#222">'
    '<h1 style="font-size:1.4em">{title}</h1>{body}</body></html>')


def page(title, body, status=HTTPStatus.OK, lang='en'):
    return Response(
        PAGE.format(title=html.escape(title), body=body, lang=lang),
        status=status, content_type='text/html; charset=utf-8')


@app.route('/<database_name>/dunning/opt-out/<token>',
    methods={'GET', 'POST'})
@with_pool
@with_transaction(context={'_check_access': False})
def opt_out(request, pool, token):
    """GET shows what the link stops and a button; POST (the button, or a
    mail client's one-click unsubscribe) stops email reminders."""
    Configuration = pool.get('account.configuration')
    Party = pool.get('party.party')
    secret = Configuration(1).get_dunning_secret()
    try:
        party_id, channel = read_token(secret, token, dt.date.today())
        party, = Party.search([('id', '=', party_id)])
    except ValueError as exception:
        return page(gettext('dunning_advanced.msg_opt_out_invalid_title'),
            '<p>%s</p>' % html.escape(gettext(
                    'dunning_advanced.msg_opt_out_invalid',
                    reason=str(exception))),
            status=HTTPStatus.BAD_REQUEST)
    if request.method == 'POST':
        if not party.dunning_email_opt_out:
            Party.write([party], {'dunning_email_opt_out': True})
        return page(gettext('dunning_advanced.msg_opt_out_done_title'),
            '<p>%s</p>' % html.escape(gettext(
                    'dunning_advanced.msg_opt_out_done', party=party.rec_name)))
    return page(gettext('dunning_advanced.msg_opt_out_confirm_title'),
        '<p>%s</p><form method="post"><button type="submit" '
        'style="font-size:1em;padding:.5em 1em">%s</button></form>' % (
            html.escape(gettext('dunning_advanced.msg_opt_out_confirm',
                    party=party.rec_name)),
            html.escape(gettext('dunning_advanced.msg_opt_out_button'))))
