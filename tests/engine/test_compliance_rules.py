"""The worked example of engine/compliance.py, and the rules at their edges."""
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from trytond.modules.dunning_advanced.engine import (
    CAPPED, EMAIL, LETTER, QUIET_HOURS, Cap, Message, QuietHours, Rules, Sent,
    next_allowed, plan)

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 27, 6, tzinfo=UTC)  # a Friday
PARIS, NEW_YORK = 'Europe/Paris', 'America/New_York'
SMS = 'sms'


def at(*args):
    return dt.datetime(*args, tzinfo=UTC)


def message(party_id, level_id, channel=EMAIL, line_ids=(1,),
        amount=Decimal('100.00')):
    return Message(party_id=party_id, level_id=level_id, channel=channel,
        line_ids=line_ids, amount=amount, date=NOW.date(),
        key=f'{party_id}:{channel}:{level_id}:{NOW.date()}')


def only(messages, sent=(), zone=PARIS, rules=Rules(), now=NOW,
        amounts=None):
    amounts = amounts or {1: Decimal('100.00')}
    planned, = plan(messages, sent, zone, rules, now, amounts)
    return planned


def test_paris_deferred_to_eight_local():
    planned = only([message(7, 1)])
    assert planned.send_after == at(2026, 3, 27, 7)
    assert planned.deferred_for == (QUIET_HOURS,)


def test_new_york_knows_its_own_summer_time():
    planned = only([message(8, 1)], zone=NEW_YORK)
    # New York is on summer time since 03-08, Paris not yet: 5 hours apart.
    assert planned.send_after == at(2026, 3, 27, 12)


def test_same_run_sends_to_one_and_defers_the_other():
    noon_paris = at(2026, 3, 27, 11)
    assert only([message(7, 1)], now=noon_paris).send_after is None
    assert only([message(8, 1)], zone=NEW_YORK,
        now=noon_paris).send_after == at(2026, 3, 27, 12)


def test_sms_cap_then_weekend():
    planned = only([message(9, 2, SMS)],
        sent=[Sent(1, SMS, at(2026, 3, 25, 9))])
    # Free on Saturday 03-28 09:00 UTC; Monday 08:00 Paris is summer time.
    assert planned.send_after == at(2026, 3, 30, 6)
    assert planned.deferred_for == (QUIET_HOURS, CAPPED)


def test_three_per_week():
    sent = [Sent(i, EMAIL, at(2026, 3, day, 9))
        for i, day in enumerate((21, 23, 25))]
    assert only([message(10, 3)], sent=sent).send_after == at(2026, 3, 30, 6)
    # Two in the week: the third goes at the opening of the day.
    assert only([message(10, 3)], sent=sent[1:]).send_after == at(
        2026, 3, 27, 7)


def test_pending_message_merged_into_the_next():
    amounts = {30: Decimal('10.00'), 31: Decimal('20.00'),
        32: Decimal('30.00')}
    pending = Sent(5, EMAIL, at(2026, 3, 30, 6), pending=True,
        line_ids=(30, 31))
    planned = only([message(11, 2, line_ids=(32,), amount=amounts[32])],
        sent=[pending], amounts=amounts)
    assert planned.line_ids == (30, 31, 32)
    assert planned.amount == Decimal('60.00')
    assert planned.replaces == (5,)


def test_paid_lines_of_a_merged_message_are_dropped():
    pending = Sent(5, EMAIL, at(2026, 3, 30, 6), pending=True,
        line_ids=(30, 31))
    planned = only([message(11, 2, line_ids=(32,), amount=Decimal('30'))],
        sent=[pending], amounts={31: Decimal('20'), 32: Decimal('30')})
    assert planned.line_ids == (31, 32)
    assert planned.amount == Decimal('50')


def test_letters_are_neither_deferred_nor_counted():
    sent = [Sent(i, LETTER, at(2026, 3, 26, 9)) for i in range(5)]
    assert only([message(7, 1, LETTER)], sent=sent).send_after is None
    assert only([message(7, 1)], sent=sent, now=at(2026, 3, 27, 11)
        ).send_after is None


def test_four_levels_in_a_week_within_the_caps():
    "Four reminders decided on four days: never more than 3 in 7 days"
    sent, times = [], []
    for number, day in enumerate((23, 24, 25, 26)):
        now = at(2026, 3, day, 10)
        planned = only([message(12, number + 1)], sent=sent, now=now)
        moment = planned.send_after or now
        times.append(moment)
        sent = [s for s in sent if s.id not in planned.replaces] + [
            Sent(number, EMAIL, moment, pending=planned.send_after is not None,
                line_ids=planned.line_ids)]
    assert times[3] == at(2026, 3, 30, 10)
    for start in times:
        assert sum(start <= t < start + dt.timedelta(days=7)
            for t in times) <= 3


def test_public_holiday_skipped():
    easter_monday = dt.date(2026, 4, 6)
    saturday = at(2026, 4, 4, 10)
    assert next_allowed(saturday, PARIS, QuietHours(),
        frozenset({easter_monday})) == at(2026, 4, 7, 6)
    assert next_allowed(saturday, PARIS, QuietHours(holidays=False),
        frozenset({easter_monday})) == at(2026, 4, 6, 6)


def test_autumn_change_of_time():
    "Sunday 2026-10-25 Paris goes back to winter time: 08:00 is 07:00 UTC"
    assert next_allowed(at(2026, 10, 24, 12), PARIS, QuietHours()) == at(
        2026, 10, 26, 7)
    assert next_allowed(at(2026, 10, 23, 5), PARIS, QuietHours()) == at(
        2026, 10, 23, 6)


def test_quiet_hours_errors():
    assert QuietHours(dt.time(20), dt.time(8)).errors() == (
        'start_after_end',)
    assert QuietHours(days=frozenset()).errors() == ('no_day',)


@given(st.datetimes(min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.sampled_from([PARIS, NEW_YORK, 'Asia/Tokyo', 'Australia/Sydney']))
def test_next_allowed_is_allowed_and_never_earlier(moment, zone):
    from zoneinfo import ZoneInfo
    allowed = next_allowed(moment, zone, QuietHours())
    local = allowed.astimezone(ZoneInfo(zone))
    assert allowed >= moment
    assert local.weekday() < 5
    assert dt.time(8) <= local.time() < dt.time(20)
    assert next_allowed(allowed, zone, QuietHours()) == allowed


@pytest.mark.parametrize('count', [1, 2, 3])
def test_cap_edge(count):
    "Exactly the cap's days after the oldest message, it may go"
    sent = [Sent(i, SMS, at(2026, 3, 23 + i, 9)) for i in range(count)]
    planned = only([message(9, 1, SMS)], sent=sent,
        rules=Rules(caps=(Cap(count, 3, SMS),)), now=at(2026, 3, 25, 12))
    assert planned.send_after == at(2026, 3, 26, 9)


def test_opted_out_gets_only_formal_notices_by_letter():
    from trytond.modules.dunning_advanced.engine import (
        NO_CONTACT_TASK, LevelRule, OpenLine, PartyFacts, Policy, decide)
    policy = Policy(1, (
            LevelRule(1, 3, channels=(EMAIL,)),
            LevelRule(2, 30, channels=(EMAIL,), formal_notice=True)))
    date = dt.date(2026, 3, 27)
    lines = (
        OpenLine(1, 7, 1, date - dt.timedelta(days=5), Decimal('10')),
        OpenLine(2, 7, 1, date - dt.timedelta(days=40), Decimal('20')))
    opted_out = PartyFacts(7, lines, reachable=frozenset({LETTER}),
        withdrawn=frozenset({EMAIL}))
    decisions = decide([opted_out], {1: policy}, date)
    assert [(m.level_id, m.channel) for m in decisions.messages] == [
        (2, LETTER)]
    assert not [a for a in decisions.actions if a.kind == NO_CONTACT_TASK]
    assert {c.level_id for c in decisions.changes} == {1, 2}

    no_address = PartyFacts(7, lines, reachable=frozenset({LETTER}))
    decisions = decide([no_address], {1: policy}, date)
    assert [(m.level_id, m.channel, m.line_ids)
        for m in decisions.messages] == [(2, LETTER, (1, 2))]
    assert [a.level_id for a in decisions.actions
        if a.kind == NO_CONTACT_TASK] == [2]
