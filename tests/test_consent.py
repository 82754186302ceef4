"""Consent to reminders per channel: the history, the opt-out link and what
the next run does with it."""
import datetime as dt
import re
from urllib.parse import quote

import pytest
from proteus import Model
from werkzeug.test import Client

from conftest import (
    YEAR, body_of, make_customer, make_invoice, run_dunning, signed)

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)  # runs on weekdays: weekends wait for office hours


def day(offset):
    return DUE + dt.timedelta(days=offset)


def consents(party):
    Consent = Model.get('account.dunning.consent')
    return [(c.channel, c.state, c.source) for c in Consent.find(
            [('party', '=', party.id)], order=[('id', 'ASC')])]


def portal_on_localhost(tryton):
    "Links that werkzeug's test client can follow"
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.dunning_portal_url = (
        f"http://localhost/{tryton['config'].database_name}")
    configuration.save()


def opt_out_path(email):
    return re.search(r'http://localhost(/\S+/dunning/opt-out/\S+)',
        body_of(email)).group(1)


def test_consent_history(tryton):
    config = tryton['config']
    Party = Model.get('party.party')
    Consent = Model.get('account.dunning.consent')
    Audit = Model.get('account.dunning.audit')
    party = make_customer("Garage Lenoir", 'lenoir@garage.example')
    assert party.dunning_email_consent, "no row means granted"
    assert party.dunning_sms_consent and party.dunning_portal_consent
    assert consents(party) == []

    party.dunning_email_consent = False
    party.save()
    party.reload()
    assert not party.dunning_email_consent and party.dunning_email_opt_out
    party.dunning_email_consent = True
    party.dunning_sms_consent = False
    party.save()
    # The former field still works and records the same consent.
    Party.write([party.id], {'dunning_email_opt_out': False}, config.context)

    party.reload()
    assert party.dunning_email_consent and not party.dunning_email_opt_out
    assert not party.dunning_sms_consent and party.dunning_portal_consent
    assert sorted(consents(party)) == sorted([
            ('email', 'withdrawn', 'accountant'),
            ('email', 'granted', 'accountant'),
            ('sms', 'withdrawn', 'accountant'),
            ]), "every change kept, an unchanged one adds nothing"
    assert [c.state for c in party.dunning_consents][-1] == 'withdrawn', (
        "history newest first")
    assert {c.proof for c in party.dunning_consents} == {'user admin'}
    assert sorted(a.reason for a in Audit.find([
                    ('party', '=', party.id),
                    ('kind', '=', 'consent_changed')])) == [
        'email granted (accountant)', 'email withdrawn (accountant)',
        'sms withdrawn (accountant)']

    row = party.dunning_consents[0]
    with pytest.raises(Exception, match="not allowed|append-only"):
        Consent.write([row.id], {'state': 'granted'}, config.context)
    with pytest.raises(Exception, match="not allowed|append-only"):
        Consent.delete([row])
    assert len(consents(party)) == 3


def test_opt_out_link_and_resume(tryton, mailbox):
    portal_on_localhost(tryton)
    party = make_customer("Garage Petit", 'petit@garage.example')
    make_invoice(tryton, party, '210.00', INVOICE_DATE)
    run_dunning(day(0))
    email, = mailbox.messages
    path = opt_out_path(email)
    unsubscribe = email['List-Unsubscribe'].strip('<>')
    assert unsubscribe.endswith(path)
    client = Client(wsgi_app())

    page = client.get(path)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Stop sending payment reminders by email to Garage Petit" in text
    assert '<form method="post">' in text
    assert consents(party) == [], "a GET (a mail scanner) changes nothing"

    done = client.post(path, headers={'User-Agent': 'Thunderbird/128'},
        environ_base={'REMOTE_ADDR': '203.0.113.7'})
    text = done.get_data(as_text=True)
    assert done.status_code == 200
    assert ("Garage Petit will no longer receive payment reminders by email"
        in text)
    assert 'name="action" value="resume"' in text
    assert "Resume payment reminders by email" in text
    party.reload()
    assert not party.dunning_email_consent and party.dunning_email_opt_out
    withdrawal, = party.dunning_consents
    assert (withdrawal.channel, withdrawal.state, withdrawal.source) == (
        'email', 'withdrawn', 'opt_out_link')
    assert '203.0.113.7' in withdrawal.proof
    assert 'Thunderbird/128' in withdrawal.proof
    assert re.search(r'time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00',
        withdrawal.proof)

    run_dunning(day(6))
    assert len(mailbox.messages) == 1, "no email after the opt-out"
    Message = Model.get('account.dunning.message')
    assert not Message.find([
            ('party', '=', party.id),
            ('channel', '=', 'email'),
            ('date', '=', day(6)),
            ]), "nothing queued by email either"

    resumed = client.post(path, data={'action': 'resume'})
    assert resumed.status_code == 200
    assert ("Garage Petit will receive payment reminders by email again"
        in resumed.get_data(as_text=True))
    party.reload()
    assert party.dunning_email_consent and not party.dunning_email_opt_out
    assert consents(party) == [
        ('email', 'withdrawn', 'opt_out_link'),
        ('email', 'granted', 'opt_out_link')]

    run_dunning(day(13))
    assert len(mailbox.messages) == 2, "email again after the resume"

    # A mail client's RFC 8058 one-click unsubscribe.
    one_click = client.post(path, data={
            'List-Unsubscribe': 'One-Click'})
    assert one_click.status_code == 200
    party.reload()
    assert not party.dunning_email_consent


def test_opt_out_link_other_channels(tryton, mailbox):
    from trytond.modules.dunning_advanced.message import sign_token
    config = tryton['config']
    portal_on_localhost(tryton)
    party = make_customer("Transports Morel", 'morel@transports.example')
    make_invoice(tryton, party, '90.00', INVOICE_DATE)
    run_dunning(day(0))
    database = tryton['config'].database_name
    client = Client(wsgi_app())
    token = signed(config, sign_token, party.id, 'sms')
    page = client.get(f'/{database}/dunning/opt-out/{token}')
    assert "Stop sending payment reminders by SMS" in page.get_data(
        as_text=True)
    client.post(f'/{database}/dunning/opt-out/{token}')
    party.reload()
    assert not party.dunning_sms_consent
    assert party.dunning_email_consent and party.dunning_portal_consent


def test_opt_out_link_refused(tryton, mailbox):
    from trytond.modules.dunning_advanced.message import sign_token
    config = tryton['config']
    portal_on_localhost(tryton)
    party = make_customer("Garage Roux", 'roux@garage.example')
    make_invoice(tryton, party, '120.00', INVOICE_DATE)
    run_dunning(day(0))
    email, = mailbox.messages
    path = opt_out_path(email)
    prefix, token = path.rsplit('/', 1)
    yesterday = dt.date.today() - dt.timedelta(days=1)
    cases = {
        'malformed token': 'not-a-token',
        'bad signature': token[:-1] + ('0' if token[-1] != '0' else '1'),
        'expired token': signed(
            config, sign_token, party.id, 'email', expires=yesterday),
        'unknown channel': signed(config, sign_token, party.id, 'fax'),
        }
    cases['unknown party'] = signed(config, sign_token, 10 ** 6, 'email')
    cases['not ASCII'] = token[:-1] + 'é'
    statuses = {'expired token': 410, 'unknown channel': 404,
        'unknown party': 404}
    words = {
        'malformed token': "This link is incomplete",
        'bad signature': "This link was changed after we sent it",
        'expired token': "This link has expired",
        'unknown channel': "we cannot find",
        'unknown party': "we cannot find",
        'not ASCII': "This link was changed after we sent it",
        }
    client = Client(wsgi_app())
    for reason, bad in cases.items():
        for method in [client.get, client.post]:
            response = method(f'{prefix}/{quote(bad)}')
            assert response.status_code == statuses.get(reason, 400), reason
            text = response.get_data(as_text=True)
            assert words[reason] in text, reason
            assert "Nothing was changed" in text
            assert "Traceback" not in text and reason not in text, (
                "no Python error shown")
            assert '<html lang="en">' in text
    Lang = Model.get('ir.lang')
    Lang.click(Lang.find([('code', '=', 'fr')]), 'load_translations')
    french = client.get(f'{prefix}/not-a-token',
        headers={'Accept-Language': 'fr-FR,fr;q=0.9,en;q=0.5'})
    assert french.status_code == 400
    assert '<html lang="fr">' in french.get_data(as_text=True)
    assert "Ce lien est incomplet" in french.get_data(as_text=True)
    assert consents(party) == [], "nothing changed"
    party.reload()
    assert party.dunning_email_consent


def wsgi_app():
    from trytond.wsgi import app
    return app
