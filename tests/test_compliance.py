"""Reminders reach customers only when allowed: quiet hours in their time
zone, frequency caps, opt-outs; nothing is lost on the way."""
import datetime as dt

import pytest
from proteus import Model

from conftest import (
    body_of, make_customer, make_invoice, run_dunning, send_pending)

UTC = dt.timezone.utc


def customer_in(name, email, country_code, country_name):
    Country = Model.get('country.country')
    country, = Country.find([('code', '=', country_code)]) or [
        Country(name=country_name, code=country_code)]
    country.save()
    party = make_customer(name, email)
    address, = party.addresses
    address.country = country
    party.save()
    return party


def run_at(tryton, date, moment):
    with tryton['config'].set_context(dunning_now=moment):
        return run_dunning(date, cron=False)


def messages_of(party):
    Message = Model.get('account.dunning.message')
    return Message.find([('party', '=', party.id)], order=[('id', 'ASC')])


def test_quiet_hours_in_each_customer_zone(tryton, mailbox):
    paris = customer_in("Garage du Rhône", 'rhone@garage.example',
        'FR', "France")
    new_york = customer_in("Brooklyn Fleet", 'ap@brooklyn-fleet.example',
        'US', "United States")
    # Due on 03-24: 3 days late on Friday 03-27.
    for party in (paris, new_york):
        make_invoice(tryton, party, '250.00', dt.date(2026, 2, 22), days=30)

    # 11:00 UTC is 12:00 in Paris and 07:00 in New York, already on
    # summer time (since 03-08) while Paris is not (until 03-29).
    run_at(tryton, dt.date(2026, 3, 27), dt.datetime(2026, 3, 27, 11,
            tzinfo=UTC))
    assert [m['To'] for m in mailbox.messages] == [
        'Garage du Rhône <rhone@garage.example>']
    deferred, = messages_of(new_york)
    assert deferred.state == 'deferred'
    assert deferred.next_attempt == dt.datetime(2026, 3, 27, 12)  # 08:00 EDT
    Audit = Model.get('account.dunning.audit')
    entry, = Audit.find([('kind', '=', 'message_deferred')])
    assert 'America/New_York' in entry.reason and 'quiet_hours' in entry.reason

    # The time has come (the real clock is past it): the cron sends it.
    send_pending(tryton['config'])
    assert len(mailbox.messages) == 2
    deferred.reload()
    assert deferred.state == 'sent'


def test_deferral_across_the_change_of_time(tryton, mailbox):
    paris = customer_in("Garage du Rhône", 'rhone@garage.example',
        'FR', "France")
    new_york = customer_in("Brooklyn Fleet", 'ap@brooklyn-fleet.example',
        'US', "United States")
    for party in (paris, new_york):
        make_invoice(tryton, party, '250.00', dt.date(2026, 2, 23), days=30)
    # Saturday night; Paris changes to summer time on Sunday 03-29.
    run_at(tryton, dt.date(2026, 3, 28), dt.datetime(2026, 3, 28, 22,
            tzinfo=UTC))
    assert mailbox.messages == []
    paris_message, = messages_of(paris)
    new_york_message, = messages_of(new_york)
    # Monday 08:00 local: 06:00 UTC in Paris (CEST), 12:00 in New York.
    assert paris_message.next_attempt == dt.datetime(2026, 3, 30, 6)
    assert new_york_message.next_attempt == dt.datetime(2026, 3, 30, 12)


def test_caps_defer_and_merge_never_lose(tryton, mailbox):
    """A new invoice each day of a week, each reaching a level, and the
    oldest ones reaching the next: one reminder a day at the highest level,
    at most 3 sent in 7 days, every invoice in a message"""
    party = customer_in("Garage Lenoir", 'lenoir@garage.example',
        'FR', "France")
    invoices = []
    for n in range(5):
        date = dt.date(2026, 3, 23) + dt.timedelta(days=n)  # Mon to Fri
        # Due yesterday: the "Due date" level; 2 days later "Overdue 3 days"
        invoices.append(make_invoice(tryton, party, f'{100 * (n + 1)}.00',
                date - dt.timedelta(days=31), days=30))
        run_at(tryton, date, dt.datetime.combine(date, dt.time(9), UTC))
    assert len(mailbox.messages) == 3, "at most 3 reminders in 7 days"
    messages = messages_of(party)
    assert [(m.date.day, m.level.offset_days, m.state) for m in messages] == [
        (23, 0, 'sent'), (24, 0, 'sent'), (25, 3, 'sent'),
        (26, 3, 'merged'), (27, 3, 'deferred')]
    thursday, friday = messages[3:]
    assert thursday.merged_into == friday

    def invoices_of(message):
        return sorted(invoices.index(d.line.move.origin)
            for d in message.dunnings)
    # Each reminder lists every overdue invoice; the deferred one takes
    # over the lines of the one it replaces and goes once the oldest
    # reminder leaves the week: Monday, 11:00 in Paris.
    assert invoices_of(messages[2]) == [0, 1, 2]
    assert invoices_of(friday) == [0, 1, 2, 3, 4]
    assert friday.amount == sum(invoice.total_amount for invoice in invoices)
    assert friday.next_attempt == dt.datetime(2026, 3, 30, 9)
    send_pending(tryton['config'])
    assert len(mailbox.messages) == 4
    rows = {line.split()[0]
        for line in body_of(mailbox.messages[-1]).splitlines() if line.split()}
    assert {invoice.number for invoice in invoices} <= rows


def test_opted_out_customer_gets_only_formal_notices(tryton, mailbox):
    party = make_customer("Garage Muet", 'muet@garage.example')
    party.dunning_email_consent = False
    party.save()
    invoice = make_invoice(tryton, party, '500.00', dt.date(2026, 1, 2),
        days=30)
    run_dunning(dt.date(2026, 2, 5))  # 4 days late: "Overdue 3 days"
    assert messages_of(party) == []
    Task = Model.get('account.dunning.task')
    assert Task.find([('party', '=', party.id)]) == [], (
        "no task to find a contact: the customer said no")
    run_dunning(dt.date(2026, 2, 23))  # 22 days late: the final notice
    message, = messages_of(party)
    assert message.channel == 'letter' and message.level.formal_notice
    assert mailbox.messages == []
    assert invoice.number


def test_bad_reminder_hours_refused(tryton):
    QuietHours = Model.get('account.dunning.quiet_hours')
    hours = QuietHours(start=dt.time(20), end=dt.time(8))
    with pytest.raises(Exception, match='must start before they end'):
        hours.save()
    hours = QuietHours()
    for day in ('monday', 'tuesday', 'wednesday', 'thursday', 'friday'):
        setattr(hours, day, False)
    with pytest.raises(Exception, match='allow no day of the week'):
        hours.save()
    assert QuietHours.find([]) == []
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.dunning_cap_count = 0
    with pytest.raises(Exception, match='must be at least 1'):
        configuration.save()
