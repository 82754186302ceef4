"""The survey: two questions from a link in every reminder and after a
payment, one answer per customer per reminder, results in the client."""
import datetime as dt
import re
from decimal import Decimal

from proteus import Model
from werkzeug.test import Client

from conftest import (
    YEAR, body_of, make_customer, make_invoice, run_dunning, signed)
from portal_support import tryton_portal  # noqa: F401

INVOICE_DATE = dt.date(YEAR, 3, 2)
DUE = dt.date(YEAR, 4, 1)  # a Wednesday: the reminder leaves that day
SURVEY_LINE = "Paid already? Tell us how easy it was: "


def portal_on_localhost(world):
    "Links that werkzeug's test client can follow"
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.dunning_portal_url = (
        f"http://localhost/{world['config'].database_name}")
    configuration.save()


def survey_path(email):
    return re.search(re.escape(SURVEY_LINE) + r'http://localhost(\S+)',
        body_of(email)).group(1)


def csrf_of(page):
    return re.search(r'name="csrf_token" value="([^"]+)"',
        page.get_data(as_text=True)).group(1)


def answers():
    Answer = Model.get('account.dunning.survey.answer')
    return Answer.find([], order=[('id', 'ASC')])


def wsgi_app():
    from trytond.wsgi import app
    return app


def sign(config, kind, reference, expires):
    "A token signed with the database's key, as a reminder's would be"
    from trytond.modules.dunning_portal.survey import sign_survey
    return signed(config, sign_survey, kind, reference, expires)


def test_survey_from_a_reminder(tryton_portal, mailbox):  # noqa: F811
    world = tryton_portal
    portal_on_localhost(world)
    party = make_customer("Garage Petit", 'petit@garage.example')
    make_invoice(world, party, '210.00', INVOICE_DATE)
    run_dunning(DUE)
    email, = mailbox.messages
    assert SURVEY_LINE in body_of(email), "the shipped template has the line"
    assert SURVEY_LINE in body_of(email, 'html')
    path = survey_path(email)
    client = Client(wsgi_app())

    page = client.get(path)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "How easy was it to pay?" in text
    assert "What would have helped?" in text
    assert text.count('type="radio"') == 5
    assert "once sent, it cannot be changed" in text
    assert answers() == [], "a GET (a mail scanner) saves nothing"

    bad = client.post(path, data={
            'csrf_token': csrf_of(page), 'score': '9', 'comment': "?"})
    assert bad.status_code == 400
    assert "a score from 1 (very hard) to 5 (very easy)" in bad.get_data(
        as_text=True)
    assert answers() == [], "nothing saved"

    done = client.post(path, data={
            'csrf_token': csrf_of(page), 'score': '2',
            'comment': "  Card payment from the email directly  "})
    assert done.status_code == 200
    assert "Your answer is saved: 2 out of 5" in done.get_data(as_text=True)

    Message = Model.get('account.dunning.message')
    message, = Message.find([('party', '=', party.id)])
    Segment = Model.get('account.dunning.segment')
    segment, = Segment.find([('party', '=', party.id)])
    answer, = answers()
    assert (answer.party, answer.message, answer.source) == (
        party, message, 'reminder')
    assert (answer.score, answer.comment) == (
        2, "Card payment from the email directly")
    assert (answer.level, answer.channel, answer.segment) == (
        message.level, 'email', segment.segment)
    assert answer.date == dt.date.today()

    # One answer per reminder: the second is refused and the page says so.
    again = client.get(path)
    assert again.status_code == 200
    assert "You already answered on" in again.get_data(as_text=True)
    assert 'type="radio"' not in again.get_data(as_text=True)
    second = client.post(path, data={
            'csrf_token': csrf_of(page), 'score': '5'})
    assert second.status_code == 409
    text = second.get_data(as_text=True)
    assert "rating the ease of payment 2 out of 5" in text
    assert "We keep one answer per reminder" in text
    assert [(a.score, a.comment) for a in answers()] == [
        (2, "Card payment from the email directly")], "nothing changed"

    # A later reminder asks again.
    run_dunning(DUE + dt.timedelta(days=7))
    later = mailbox.messages[-1]
    assert survey_path(later) != path
    page = client.get(survey_path(later))
    client.post(survey_path(later), data={
            'csrf_token': csrf_of(page), 'score': '4'})
    assert [(a.score, a.comment) for a in answers()] == [
        (2, "Card payment from the email directly"), (4, None)]

    # The accountant's results, by level, channel and segment
    ByLevel = Model.get('account.dunning.survey.result.level')
    rows = {r.level.id: r for r in ByLevel.find([])}
    assert {l: (r.answers, r.average_score, r.low_scores)
        for l, r in rows.items()} == {
        a.level.id: (1, a.score, 1 if a.score <= 2 else 0)
        for a in answers()}
    ByChannel = Model.get('account.dunning.survey.result.channel')
    row, = ByChannel.find([])
    assert (row.channel, row.answers, row.average_score, row.low_scores) == (
        'email', 2, 3.0, 1)
    BySegment = Model.get('account.dunning.survey.result.segment')
    row, = BySegment.find([])
    assert (row.segment, row.answers, row.average_score) == (
        segment.segment, 2, 3.0)
    Answer = Model.get('account.dunning.survey.answer')
    suggestion, = Answer.find([('comment', '!=', None)])
    assert suggestion.comment == "Card payment from the email directly"


def test_survey_links_refused(tryton_portal, mailbox):  # noqa: F811
    "Forged, expired, cut or unknown links get 400 and save nothing"
    from trytond.modules.dunning_portal.survey import MESSAGE
    world = tryton_portal
    config = world['config']
    portal_on_localhost(world)
    party = make_customer("Garage Petit", 'petit@garage.example')
    make_invoice(world, party, '210.00', INVOICE_DATE)
    run_dunning(DUE)
    email, = mailbox.messages
    path = survey_path(email)
    prefix, token = path.rsplit('/', 1)
    Message = Model.get('account.dunning.message')
    message, = Message.find([])
    client = Client(wsgi_app())
    csrf = csrf_of(client.get(path))

    payload, signature = token.rsplit('.', 1)
    yesterday = dt.date.today() - dt.timedelta(days=1)
    bad_tokens = {
        'forged': payload + '.' + ('0' if signature[0] != '0' else '1')
        + signature[1:],
        'expired': sign(config, MESSAGE, message.key, yesterday),
        'cut': token[:len(token) // 2],
        'unknown': sign(config, MESSAGE, '999:email:1:2026-01-01',
            dt.date.today() + dt.timedelta(days=5)),
        }
    reasons = {
        'forged': "The link was changed after we sent it",
        'expired': "The link has expired",
        'cut': "The link is incomplete",
        'unknown': "names a reminder or payment we cannot find",
        }
    for name, bad in bad_tokens.items():
        for response in [
                client.get(f'{prefix}/{bad}'),
                client.post(f'{prefix}/{bad}', data={
                        'csrf_token': csrf, 'score': '5'}),
                ]:
            text = response.get_data(as_text=True)
            assert response.status_code == (
                410 if name == 'expired' else 400), name
            assert reasons[name] in text, name
            assert "Nothing was saved" in text
    # Without the form's token from the portal, nothing either
    response = client.post(path, data={'csrf_token': 'x', 'score': '5'})
    assert response.status_code == 400
    assert answers() == [], "nothing saved"
    assert client.get(path).status_code == 200, "the real link still works"


def test_survey_after_a_payment(tryton_portal):  # noqa: F811
    "The link the payment's confirmation page shows"
    from trytond.modules.dunning_portal.survey import survey_url
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    world = tryton_portal
    config = world['config']
    party = make_customer("Garage Petit", 'petit@garage.example')
    make_invoice(world, party, '210.00', INVOICE_DATE)
    Journal = Model.get('account.payment.journal')
    journal = Journal(name="Manual", process_method='manual')
    journal.save()
    Payment = Model.get('account.payment')
    payment = Payment(journal=journal, kind='receivable', party=party,
        amount=Decimal('210.00'))
    payment.save()

    with Transaction().start(config.database_name, 0, readonly=True):
        url = survey_url(Pool(config.database_name).get('account.payment')(
                payment.id))
    assert url.startswith(f'/{config.database_name}/portal/survey/')
    client = Client(wsgi_app())
    page = client.get(url)
    assert "once sent, it cannot be changed" in page.get_data(as_text=True)
    done = client.post(url, data={
            'csrf_token': csrf_of(page), 'score': '5',
            'comment': "Nothing, it was quick"})
    assert done.status_code == 200
    answer, = answers()
    assert (answer.party, answer.payment, answer.message, answer.source) == (
        party, payment, None, 'payment')
    assert (answer.score, answer.channel) == (5, None)
    second = client.post(url, data={
            'csrf_token': csrf_of(page), 'score': '1'})
    assert second.status_code == 409
    assert "We keep one answer per payment" in second.get_data(
        as_text=True)
    assert [a.score for a in answers()] == [5]
