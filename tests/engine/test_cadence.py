"""decide() with customer segments: tone, shifted and skipped levels and the
preferred channel of each segment."""
import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from trytond.modules.dunning_advanced.engine import (
    BLOCK_ORDERING, CALL_TASK, EMAIL, FIRM, FIRST_LATE, GENTLE, HIGH_RISK,
    LETTER, NEUTRAL, NEW, NO_CONTACT_TASK, RELIABLE, REPEAT_LATE,
    SKIP_NOT_REACHED, Action, Decisions, History, LevelChange, LevelRule,
    Message, OpenLine, PaidItem, PartyFacts, Pin, Policy, SegmentRule, Skip,
    Thresholds, decide, next_level)

D = Decimal
TODAY = dt.date(2026, 11, 24)
SMS = 'sms'

# Like the shipped "Standard B2B" procedure.
COURTESY = LevelRule(1, -7, sequence=10, channels=(EMAIL,))
DUE = LevelRule(2, 0, sequence=20, channels=(EMAIL,))
OVERDUE = LevelRule(3, 3, sequence=30, channels=(EMAIL,))
FIRM_REMINDER = LevelRule(
    4, 10, sequence=40, channels=(EMAIL,), call_task=True)
FINAL = LevelRule(5, 21, sequence=50, channels=(EMAIL, LETTER))
BLOCKED = LevelRule(
    6, 30, sequence=60, channels=(EMAIL, LETTER), block_ordering=True)
LEVELS = (COURTESY, DUE, OVERDUE, FIRM_REMINDER, FINAL, BLOCKED)

# Reliable customers are not reminded before they are late, and gently;
# repeat late ones 3 days earlier and firmly; high risk ones 5 days earlier,
# firmly, by text message first.
SEGMENT_RULES = (
    SegmentRule(
        RELIABLE, tone=GENTLE,
        skipped_level_ids=frozenset({COURTESY.id, DUE.id})),
    SegmentRule(REPEAT_LATE, tone=FIRM, shift_days=-3),
    SegmentRule(HIGH_RISK, tone=FIRM, shift_days=-5, channels=(SMS, EMAIL)),
    )
POLICY = Policy(1, LEVELS, segments=SEGMENT_RULES)
POLICIES = {1: POLICY}


def days_ago(days):
    return TODAY - dt.timedelta(days=days)


def paid(days_late, paid_days_ago):
    return PaidItem(
        D('100.00'), days_ago(paid_days_ago + days_late),
        days_ago(paid_days_ago))


# Payments at least 60 days before TODAY: the same segment on every run of
# the journeys below, from 15 days before TODAY to 35 days after.
RELIABLE_HISTORY = History(paid=tuple(paid(0, 60 + 10 * i) for i in range(3)))
FIRST_LATE_HISTORY = History(paid=(paid(0, 60), paid(10, 70)))
REPEAT_LATE_HISTORY = History(
    paid=tuple(paid(10, 60 + 10 * i) for i in range(4)))
HIGH_RISK_HISTORY = History(paid=(paid(0, 60),), broken_plans=2)
NO_HISTORY = History()


def line(id, due, amount='100.00', party_id=7, **values):
    return OpenLine(
        id, party_id, procedure_id=1, maturity_date=due, amount=D(amount),
        **values)


def party(history, *lines, party_id=7, reachable=(EMAIL,), **values):
    return PartyFacts(
        party_id, lines, reachable=frozenset(reachable), history=history,
        **values)


def key(party_id, channel, level_id, date=TODAY):
    return f'{party_id}:{channel}:{level_id}:{date.isoformat()}'


def apply(party, decisions):
    "The party once the Tryton layer wrote the level changes."
    levels = {c.line_id: c.level_id for c in decisions.changes}
    return replace(party, lines=tuple(
            replace(l, level_id=levels.get(l.id, l.level_id))
            for l in party.lines))


def journey(facts, first_day, last_day, policies=POLICIES):
    """Run every day from first_day to last_day after TODAY, the due date of
    the line; the decisions of each run, by day."""
    runs = []
    for day in range(first_day, last_day + 1):
        decisions = decide([facts], policies, TODAY + dt.timedelta(days=day))
        facts = apply(facts, decisions)
        runs.append((day, decisions))
    return runs


# Tone, shift and skipped levels

def test_reliable_party_three_days_late_gets_one_gentle_reminder():
    decisions = decide(
        [party(RELIABLE_HISTORY, line(1, days_ago(3)))], POLICIES, TODAY)

    assert decisions == Decisions(
        changes=(LevelChange(1, 7, OVERDUE.id, None),),
        messages=(Message(
                7, OVERDUE.id, EMAIL, (1,), D('100.00'), TODAY,
                key(7, EMAIL, OVERDUE.id), FIRM_REMINDER.id, days_ago(-7),
                tone=GENTLE),))


def test_reliable_party_gets_no_courtesy_seven_days_before_due():
    decisions = decide(
        [party(RELIABLE_HISTORY, line(1, days_ago(-7)))], POLICIES, TODAY)

    assert decisions == Decisions()
    assert decisions.skipped == (Skip(1, 7, SKIP_NOT_REACHED),)


def test_reliable_party_hears_nothing_before_it_is_three_days_late():
    runs = journey(party(RELIABLE_HISTORY, line(1, TODAY)), -10, 3)

    assert [(day, m.level_id, m.tone)
        for day, decisions in runs for m in decisions.messages] == [
        (3, OVERDUE.id, GENTLE)]


def test_repeat_late_party_gets_a_firm_courtesy_ten_days_before_due():
    due = TODAY + dt.timedelta(days=10)

    decisions = decide(
        [party(REPEAT_LATE_HISTORY, line(1, due))], POLICIES, TODAY)
    day_before = decide(
        [party(REPEAT_LATE_HISTORY, line(1, due))], POLICIES,
        days_ago(1))

    # The due date level comes 3 days before the due date.
    assert decisions == Decisions(
        changes=(LevelChange(1, 7, COURTESY.id, None),),
        messages=(Message(
                7, COURTESY.id, EMAIL, (1,), D('100.00'), TODAY,
                key(7, EMAIL, COURTESY.id), DUE.id,
                due - dt.timedelta(days=3), tone=FIRM),))
    assert day_before == Decisions()


def test_repeat_late_party_reaches_the_ten_day_level_on_day_seven():
    at_overdue = party(
        REPEAT_LATE_HISTORY, line(1, days_ago(7), level_id=OVERDUE.id))

    decisions = decide([at_overdue], POLICIES, TODAY)
    day_six = decide([at_overdue], POLICIES, days_ago(1))

    # The final notice, at +21, comes at +18.
    assert decisions == Decisions(
        changes=(LevelChange(1, 7, FIRM_REMINDER.id, OVERDUE.id),),
        messages=(Message(
                7, FIRM_REMINDER.id, EMAIL, (1,), D('100.00'), TODAY,
                key(7, EMAIL, FIRM_REMINDER.id), FINAL.id, days_ago(-11),
                tone=FIRM),),
        actions=(Action(
                7, CALL_TASK, FIRM_REMINDER.id, (1,), D('100.00')),))
    assert day_six == Decisions()


@pytest.mark.parametrize('history, tone, days', [
        (NO_HISTORY, NEUTRAL, [-7, 0, 3, 10, 21, 30]),
        (FIRST_LATE_HISTORY, NEUTRAL, [-7, 0, 3, 10, 21, 30]),
        (RELIABLE_HISTORY, GENTLE, [3, 10, 21, 30]),
        (REPEAT_LATE_HISTORY, FIRM, [-10, -3, 0, 7, 18, 27]),
        (HIGH_RISK_HISTORY, FIRM, [-12, -5, -2, 5, 16, 25]),
        ], ids=[NEW, FIRST_LATE, RELIABLE, REPEAT_LATE, HIGH_RISK])
def test_days_each_segment_gets_its_reminders(history, tone, days):
    """From 15 days before the due date to 35 after, run daily: the days the
    line moves up, the tone of every message, and the next level's date each
    message announces."""
    runs = journey(party(history, line(1, TODAY)), -15, 35)

    moves = [(day, change.level_id)
        for day, decisions in runs for change in decisions.changes]
    assert [day for day, _ in moves] == days
    messages = [(day, m) for day, decisions in runs
        for m in decisions.messages]
    assert {m.tone for _, m in messages} == {tone}
    announced = dict(zip(days, days[1:] + [None]))
    for day, message in messages:
        next_day = announced[day]
        assert message.next_level_date == (
            None if next_day is None else TODAY + dt.timedelta(days=next_day))


def test_next_level_of_a_segment_is_shifted_and_not_skipped():
    def next_of(level_id, segment):
        level, date = next_level(POLICY, level_id, TODAY, segment)
        return level.id, date

    assert next_of(None, RELIABLE) == (OVERDUE.id, days_ago(-3))
    assert next_of(None, REPEAT_LATE) == (COURTESY.id, days_ago(10))
    assert next_of(FINAL.id, HIGH_RISK) == (BLOCKED.id, days_ago(-25))
    assert next_of(None, FIRST_LATE) == (COURTESY.id, days_ago(7))
    assert next_level(POLICY, BLOCKED.id, TODAY, REPEAT_LATE) == (None, None)


def test_reminder_announces_the_next_level_the_segment_gets():
    "Reliable customers skipping the +10 call are told of the +21 notice."
    no_call = {1: replace(POLICY, segments=(SegmentRule(
                    RELIABLE, tone=GENTLE, skipped_level_ids=frozenset(
                        {COURTESY.id, DUE.id, FIRM_REMINDER.id})),))}

    runs = journey(party(RELIABLE_HISTORY, line(1, TODAY)), 0, 21, no_call)

    assert [(day, m.level_id, m.next_level_id, m.next_level_date)
        for day, decisions in runs for m in decisions.messages
        if m.channel == EMAIL] == [
        (3, OVERDUE.id, FINAL.id, days_ago(-21)),
        (21, FINAL.id, BLOCKED.id, days_ago(-30)),
        ]


@pytest.mark.parametrize('history', [NO_HISTORY, FIRST_LATE_HISTORY])
def test_party_of_a_segment_without_rule_gets_neutral_unshifted_levels(
        history):
    due = TODAY + dt.timedelta(days=7)

    decisions = decide([party(history, line(1, due))], POLICIES, TODAY)
    too_early = decide(
        [party(history, line(1, due + dt.timedelta(days=1)))],
        POLICIES, TODAY)

    assert decisions.messages == (Message(
            7, COURTESY.id, EMAIL, (1,), D('100.00'), TODAY,
            key(7, EMAIL, COURTESY.id), DUE.id, due, tone=NEUTRAL),)
    assert too_early == Decisions()


def test_decisions_name_the_segment_of_each_party():
    parties = [
        party(REPEAT_LATE_HISTORY, party_id=3),
        party(NO_HISTORY, party_id=1),
        party(RELIABLE_HISTORY, party_id=2),
        party(HIGH_RISK_HISTORY, party_id=5),
        party(FIRST_LATE_HISTORY, party_id=4),
        party(REPEAT_LATE_HISTORY, party_id=6,
            pin=Pin(RELIABLE, until=TODAY)),
        ]

    decisions = decide(parties, POLICIES, TODAY)

    assert [(party_id, c.segment, c.computed, c.rule)
        for party_id, c in decisions.segments] == [
        (1, NEW, NEW, 'new_below_paid'),
        (2, RELIABLE, RELIABLE, 'on_time'),
        (3, REPEAT_LATE, REPEAT_LATE, 'repeat_late_count'),
        (4, FIRST_LATE, FIRST_LATE, 'first_late'),
        (5, HIGH_RISK, HIGH_RISK, 'high_risk_broken_plans'),
        (6, RELIABLE, REPEAT_LATE, 'pinned'),
        ]
    assert dict(decisions.segments)[3].figures.late_count == 4


def test_pinned_segment_gives_its_cadence():
    "Pinned reliable, a repeat late customer gets no courtesy at -10."
    due = TODAY + dt.timedelta(days=10)
    pinned = party(REPEAT_LATE_HISTORY, line(1, due), pin=Pin(RELIABLE))

    assert decide([pinned], POLICIES, TODAY) == Decisions()


def test_thresholds_of_the_party_policy_give_its_segment():
    "Four late payments are only first-time late from five on."
    lenient = replace(POLICY, thresholds=Thresholds(
            repeat_late_count=5, high_risk_late_count=8))
    due = TODAY + dt.timedelta(days=10)
    facts = party(REPEAT_LATE_HISTORY, line(1, due))

    decisions = decide([facts], {1: lenient}, TODAY)

    assert dict(decisions.segments)[7].segment == FIRST_LATE
    assert decisions == Decisions()


# Never down

def test_line_at_the_ten_day_level_stays_there_when_its_party_turns_reliable():
    """High risk, the line reached the +10 level on day 5; pinned reliable,
    its party gets nothing more until the final notice at +21."""
    at_overdue = party(
        HIGH_RISK_HISTORY, line(1, TODAY, level_id=OVERDUE.id))
    [(_, high_risk_day_5)] = journey(at_overdue, 5, 5)
    assert high_risk_day_5.changes == (
        LevelChange(1, 7, FIRM_REMINDER.id, OVERDUE.id),)
    reliable = replace(
        apply(at_overdue, high_risk_day_5), pin=Pin(RELIABLE))

    runs = journey(reliable, 6, 21)

    assert all(decisions == Decisions() for _, decisions in runs[:-1])
    day, day_21 = runs[-1]
    assert day == 21
    assert day_21.changes == (LevelChange(1, 7, FINAL.id, FIRM_REMINDER.id),)
    assert {(m.channel, m.tone) for m in day_21.messages} == {
        (EMAIL, GENTLE), (LETTER, GENTLE)}


def test_line_past_the_reliable_target_gets_no_message():
    "At +10 on day 5, a reliable party is not sent the +3 reminder again."
    at_firm = party(
        RELIABLE_HISTORY, line(1, days_ago(5), level_id=FIRM_REMINDER.id))

    decisions = decide([at_firm], POLICIES, TODAY)

    assert decisions == Decisions()
    assert decisions.skipped == ()


def test_line_at_a_skipped_level_moves_on_to_the_next_level_given():
    "Courtesy sent while new; reliable since: no due date reminder, then +3."
    at_courtesy = party(
        RELIABLE_HISTORY, line(1, TODAY, level_id=COURTESY.id))

    runs = journey(at_courtesy, -7, 3)

    assert [(day, decisions.changes) for day, decisions in runs
        if decisions != Decisions()] == [
        (3, (LevelChange(1, 7, OVERDUE.id, COURTESY.id),))]
    [(_, day_3)] = runs[-1:]
    assert [(m.level_id, m.tone) for m in day_3.messages] == [
        (OVERDUE.id, GENTLE)]


# Channel preference

ALL_CHANNELS = LevelRule(11, 0, channels=(EMAIL, SMS, LETTER))
NO_LETTER = LevelRule(12, 0, channels=(EMAIL, SMS))


def channel_policy(level):
    return {1: Policy(1, (level,), segments=(
                SegmentRule(HIGH_RISK, tone=FIRM, channels=(SMS, EMAIL)),))}


def sent(history, reachable, level=ALL_CHANNELS):
    decisions = decide(
        [party(history, line(1, TODAY), reachable=reachable)],
        channel_policy(level), TODAY)
    return [m.channel for m in decisions.messages], [
        a.kind for a in decisions.actions]


def test_preferred_channel_plus_letter_when_reachable_by_sms():
    assert sent(HIGH_RISK_HISTORY, {SMS, EMAIL}) == ([SMS, LETTER], [])


def test_next_preferred_channel_plus_letter_when_only_email():
    assert sent(HIGH_RISK_HISTORY, {EMAIL}) == ([EMAIL, LETTER], [])


def test_preference_with_no_reachable_channel_sends_the_letter():
    assert sent(HIGH_RISK_HISTORY, set()) == ([LETTER], [])


def test_preference_still_falls_back_to_a_letter_and_a_contact_task():
    "A level without letter, a party reachable on none of its channels."
    assert sent(HIGH_RISK_HISTORY, set(), NO_LETTER) == (
        [LETTER], [NO_CONTACT_TASK])
    assert sent(HIGH_RISK_HISTORY, {EMAIL, SMS}, NO_LETTER) == ([SMS], [])


@pytest.mark.parametrize('history', [RELIABLE_HISTORY, NO_HISTORY])
def test_without_a_rule_every_reachable_channel_of_the_level(history):
    assert sent(history, {SMS, EMAIL}) == ([EMAIL, SMS, LETTER], [])
    assert sent(history, {EMAIL}) == ([EMAIL, LETTER], [])


def test_preference_never_adds_a_channel_the_level_does_not_list():
    "High risk prefers SMS, but the final notice goes by e-mail and letter."
    decisions = decide(
        [party(HIGH_RISK_HISTORY, line(1, days_ago(16)),
                reachable={SMS, EMAIL})], POLICIES, TODAY)

    assert [(m.level_id, m.channel, m.key) for m in decisions.messages] == [
        (FINAL.id, EMAIL, key(7, EMAIL, FINAL.id)),
        (FINAL.id, LETTER, key(7, LETTER, FINAL.id)),
        ]


# Jumping levels

def test_high_risk_party_first_seen_late_gets_one_firm_reminder():
    """26 days late, a high risk party is past the +30 block shifted to +25:
    one reminder of it on each channel, no call task of the +10 level it
    jumped, ordering blocked."""
    decisions = decide(
        [party(HIGH_RISK_HISTORY, line(1, days_ago(26)), line(2, days_ago(6)),
                reachable={SMS, EMAIL})], POLICIES, TODAY)

    assert decisions.changes == (
        LevelChange(1, 7, BLOCKED.id, None),
        LevelChange(2, 7, FIRM_REMINDER.id, None),
        )
    assert [(m.level_id, m.channel, m.line_ids, m.tone)
        for m in decisions.messages] == [
        (BLOCKED.id, EMAIL, (1, 2), FIRM), (BLOCKED.id, LETTER, (1, 2), FIRM)]
    assert decisions.actions == (Action(
            7, BLOCK_ORDERING, BLOCKED.id, (1,), D('100.00')),)
