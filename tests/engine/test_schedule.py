import datetime as dt
from collections import Counter
from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trytond.modules.dunning_advanced.engine import (
    BLOCK_ORDERING, CALL_TASK, COLLECTION, EMAIL, FEE, INTEREST, LETTER,
    NO_CONTACT_TASK, RELIABLE, SKIP_COVERED_BY_CREDIT, SKIP_DISPUTED,
    SKIP_NO_PROCEDURE, SKIP_NOT_REACHED, SKIP_PAYMENT_PROCESSING,
    UNBLOCK_ORDERING, Action, Decisions, LevelChange, LevelRule, Message,
    OpenLine, PartyFacts, Pin, Policy, SegmentRule, Skip, blocking_level_ids,
    decide, next_level)

D = Decimal
TODAY = dt.date(2026, 11, 24)

# The procedure of the example in engine/schedule.py, levels given unordered.
COURTESY = LevelRule(1, -7, channels=(EMAIL,))
REMINDER = LevelRule(2, 10, channels=(EMAIL, LETTER), fee=True)
NOTICE = LevelRule(
    3, 30, channels=(LETTER,), interest_rate=D('0.08'), block_ordering=True)
LAST = LevelRule(
    4, 60, channels=(LETTER,), block_ordering=True, collection=True,
    call_task=True)
POLICY = Policy(1, (NOTICE, LAST, COURTESY, REMINDER))
POLICIES = {1: POLICY}


def line(id, due, amount='100.00', party_id=7, **values):
    values.setdefault('procedure_id', 1)
    return OpenLine(
        id, party_id, maturity_date=due, amount=D(amount), **values)


def days_ago(days):
    return TODAY - dt.timedelta(days=days)


def key(party_id, channel, level_id):
    return f'{party_id}:{channel}:{level_id}:2026-11-24'


def test_example_of_the_docstring():
    acme = PartyFacts(7, (
            line(10, dt.date(2026, 8, 1), '80.00'),
            line(11, dt.date(2026, 10, 25), '1000.00', level_id=2),
            line(12, dt.date(2026, 11, 14), '250.00'),
            line(13, dt.date(2026, 11, 30), '120.00'),
            line(14, dt.date(2026, 12, 15), '40.00'),
            line(15, dt.date(2026, 9, 1), '500.00', disputed=True),
            ), credit=D('100.00'), reachable=frozenset({EMAIL}))
    no_email = PartyFacts(8, (
            line(20, dt.date(2026, 11, 28), '60.00', party_id=8),
            ), ordering_blocked=True)
    first_seen_late = PartyFacts(6, (
            line(40, dt.date(2026, 8, 16), party_id=6),
            ), ordering_blocked=True)

    decisions = decide([no_email, acme, first_seen_late], POLICIES, TODAY)

    assert decisions == Decisions(
        changes=(
            LevelChange(40, 6, 4, None),
            LevelChange(11, 7, 3, 2),
            LevelChange(12, 7, 2, None),
            LevelChange(13, 7, 1, None),
            LevelChange(20, 8, 1, None),
            ),
        messages=(
            Message(6, 4, LETTER, (40,), D('100.00'), TODAY,
                key(6, LETTER, 4)),
            Message(7, 3, LETTER, (11, 12, 13), D('1370.00'), TODAY,
                key(7, LETTER, 3), 4, dt.date(2026, 12, 24)),
            Message(8, 1, LETTER, (20,), D('60.00'), TODAY,
                key(8, LETTER, 1), 2, dt.date(2026, 12, 8)),
            ),
        actions=(
            Action(6, FEE, 2, (40,)),
            Action(6, INTEREST, 3, (40,), D('2.19'), ((40, D('2.19')),)),
            Action(6, COLLECTION, 4, (40,), D('100.00')),
            Action(6, CALL_TASK, 4, (40,), D('100.00')),
            Action(7, FEE, 2, (12,)),
            Action(7, INTEREST, 3, (11,), D('6.58'), ((11, D('6.58')),)),
            Action(7, BLOCK_ORDERING, 3, (11,), D('1000.00')),
            Action(8, NO_CONTACT_TASK, 1, (20,), D('60.00')),
            Action(8, UNBLOCK_ORDERING, None),
            ))
    assert decisions.skipped == (
        Skip(10, 7, SKIP_COVERED_BY_CREDIT),
        Skip(14, 7, SKIP_NOT_REACHED),
        Skip(15, 7, SKIP_DISPUTED),
        )


def test_courtesy_reached_seven_days_before_due_not_eight():
    reached = decide([PartyFacts(7, (
                    line(1, TODAY + dt.timedelta(days=7)),),
                reachable=frozenset({EMAIL}))], POLICIES, TODAY)
    early = decide([PartyFacts(7, (
                    line(1, TODAY + dt.timedelta(days=8)),),
                reachable=frozenset({EMAIL}))], POLICIES, TODAY)

    assert reached.changes == (LevelChange(1, 7, COURTESY.id, None),)
    assert [m.channel for m in reached.messages] == [EMAIL]
    assert early == Decisions()
    assert early.skipped == (Skip(1, 7, SKIP_NOT_REACHED),)


def test_one_message_per_party_level_and_channel_for_five_lines():
    lines = tuple(
        line(id, days_ago(10 + id), f'{id}0.01') for id in range(1, 6))

    decisions = decide(
        [PartyFacts(7, lines, reachable=frozenset({EMAIL}))], POLICIES, TODAY)

    # The oldest line, 15 days late, reaches the +30 notice in 15 days.
    assert [(m.level_id, m.channel, m.line_ids, m.amount, m.next_level_date)
        for m in decisions.messages] == [
        (REMINDER.id, EMAIL, (1, 2, 3, 4, 5), D('150.05'), days_ago(-15)),
        (REMINDER.id, LETTER, (1, 2, 3, 4, 5), D('150.05'), days_ago(-15)),
        ]
    assert decisions.actions == (
        Action(7, FEE, REMINDER.id, (1, 2, 3, 4, 5)),)


def test_long_overdue_line_goes_straight_to_the_last_reached_level():
    decisions = decide(
        [PartyFacts(7, (line(1, days_ago(100)),), ordering_blocked=True)],
        POLICIES, TODAY)

    assert decisions.changes == (LevelChange(1, 7, LAST.id, None),)
    assert decisions.messages == (
        Message(7, LAST.id, LETTER, (1,), D('100.00'), TODAY,
            key(7, LETTER, LAST.id)),)
    assert [(a.kind, a.level_id) for a in decisions.actions] == [
        (FEE, REMINDER.id), (INTEREST, NOTICE.id), (COLLECTION, LAST.id),
        (CALL_TASK, LAST.id)]


def test_one_reminder_at_the_highest_level_lists_every_overdue_line():
    "Lines 4, 12 and 35 days late: one letter of the +30 notice for all."
    party = PartyFacts(7, (
            line(1, days_ago(12), '10.00'),
            line(2, days_ago(35), '20.00'),
            line(3, days_ago(4), '40.00', level_id=COURTESY.id),
            line(4, days_ago(-3), '80.00'),
            line(5, days_ago(50), '160.00', disputed=True),
            ), reachable=frozenset({EMAIL}))

    decisions = decide([party], POLICIES, TODAY)

    assert decisions.changes == (
        LevelChange(1, 7, REMINDER.id, None),
        LevelChange(2, 7, NOTICE.id, None),
        LevelChange(4, 7, COURTESY.id, None),
        )
    assert decisions.messages == (
        Message(7, NOTICE.id, LETTER, (1, 2, 3, 4), D('150.00'), TODAY,
            key(7, LETTER, NOTICE.id), LAST.id, days_ago(-25)),)
    assert decisions.actions == (
        Action(7, FEE, REMINDER.id, (1, 2)),
        Action(7, INTEREST, NOTICE.id, (2,), D('0.15'), ((2, D('0.15')),)),
        Action(7, BLOCK_ORDERING, NOTICE.id, (2,), D('20.00')),
        )


def test_jumping_levels_keeps_their_state_not_their_words():
    "Straight to +60: one fee, interest and the block; one letter."
    calls_at_reminder = Policy(1, (
            COURTESY, replace(REMINDER, call_task=True),
            replace(NOTICE, fee=True), replace(LAST, block_ordering=False)))

    decisions = decide([PartyFacts(7, (line(1, days_ago(61)),),
                reachable=frozenset({EMAIL}))], {1: calls_at_reminder}, TODAY)

    assert [(m.level_id, m.channel) for m in decisions.messages] == [
        (LAST.id, LETTER)]
    assert decisions.actions == (
        Action(7, FEE, NOTICE.id, (1,)),
        Action(7, INTEREST, NOTICE.id, (1,), D('1.34'), ((1, D('1.34')),)),
        Action(7, BLOCK_ORDERING, NOTICE.id, (1,), D('100.00')),
        Action(7, COLLECTION, LAST.id, (1,), D('100.00')),
        Action(7, CALL_TASK, LAST.id, (1,), D('100.00')),
        )


def test_levels_passed_on_an_earlier_run_charge_nothing_again():
    at_notice = PartyFacts(7, (line(1, days_ago(61), level_id=NOTICE.id),),
        ordering_blocked=True)

    decisions = decide([at_notice], POLICIES, TODAY)

    assert [(a.kind, a.level_id) for a in decisions.actions] == [
        (COLLECTION, LAST.id), (CALL_TASK, LAST.id)]


def test_a_level_the_segment_skips_charges_nothing_when_jumped():
    no_reminder = {1: replace(POLICY, segments=(SegmentRule(
                    RELIABLE, skipped_level_ids=frozenset({REMINDER.id})),))}
    party = PartyFacts(7, (line(1, days_ago(31)),), pin=Pin(RELIABLE))

    decisions = decide([party], no_reminder, TODAY)

    assert FEE not in [a.kind for a in decisions.actions]


def test_the_block_holds_at_levels_after_the_blocking_one():
    "Handed over without a block of its own, the party still cannot order."
    shipped_like = Policy(1, (
            COURTESY, REMINDER, replace(NOTICE, interest_rate=None),
            replace(LAST, block_ordering=False, call_task=False)))

    first_seen = decide([PartyFacts(7, (line(1, days_ago(61)),))],
        {1: shipped_like}, TODAY)
    blocked_before = decide([PartyFacts(7, (
                    line(1, days_ago(61), level_id=NOTICE.id),),
                ordering_blocked=True)], {1: shipped_like}, TODAY)

    assert [(a.kind, a.level_id) for a in first_seen.actions] == [
        (FEE, REMINDER.id), (BLOCK_ORDERING, NOTICE.id),
        (COLLECTION, LAST.id)]
    assert [a.kind for a in blocked_before.actions] == [COLLECTION]
    assert blocking_level_ids(shipped_like) == {NOTICE.id, LAST.id}


def test_never_down_when_maturity_is_rescheduled():
    # At the +10 reminder, then the due date moved to 2 days ago.
    back_to_courtesy = decide(
        [PartyFacts(7, (line(1, days_ago(2), level_id=REMINDER.id),))],
        POLICIES, TODAY)
    back_before_courtesy = decide(
        [PartyFacts(7, (line(1, days_ago(-30), level_id=REMINDER.id),))],
        POLICIES, TODAY)

    assert back_to_courtesy == Decisions()
    assert back_to_courtesy.skipped == ()
    assert back_before_courtesy == Decisions()
    assert back_before_courtesy.skipped == (Skip(1, 7, SKIP_NOT_REACHED),)


def test_level_removed_from_the_policy_is_before_the_first_level():
    decisions = decide(
        [PartyFacts(7, (line(1, days_ago(3), level_id=99),),
                reachable=frozenset({EMAIL}))], POLICIES, TODAY)

    assert decisions.changes == (LevelChange(1, 7, COURTESY.id, 99),)


def test_disputed_and_payment_processing_lines_are_left_alone():
    decisions = decide([PartyFacts(7, (
                    line(1, days_ago(40), disputed=True),
                    line(2, days_ago(40), payment_processing=True),
                    line(3, days_ago(40), disputed=True,
                        payment_processing=True),
                    ))], POLICIES, TODAY)

    assert decisions == Decisions()
    assert decisions.skipped == (
        Skip(1, 7, SKIP_DISPUTED),
        Skip(2, 7, SKIP_PAYMENT_PROCESSING),
        Skip(3, 7, SKIP_DISPUTED),
        )


def test_line_without_a_known_procedure_is_skipped():
    decisions = decide([PartyFacts(7, (
                    line(1, days_ago(40), procedure_id=None),
                    line(2, days_ago(40), procedure_id=42),
                    ))], POLICIES, TODAY)

    assert decisions == Decisions()
    assert decisions.skipped == (
        Skip(1, 7, SKIP_NO_PROCEDURE), Skip(2, 7, SKIP_NO_PROCEDURE))


def test_credit_covers_oldest_lines_exactly():
    decisions = decide([PartyFacts(7, (
                    line(1, days_ago(12), '70.00'),
                    line(2, days_ago(20), '200.00'),
                    line(3, days_ago(15), '50.00'),
                    ), credit=D('250.00'))], POLICIES, TODAY)

    assert decisions.changes == (LevelChange(1, 7, REMINDER.id, None),)
    assert decisions.skipped == (
        Skip(2, 7, SKIP_COVERED_BY_CREDIT), Skip(3, 7, SKIP_COVERED_BY_CREDIT))


def test_credit_one_cent_short_duns_the_whole_line():
    decisions = decide([PartyFacts(7, (
                    line(1, days_ago(20), '250.00'),
                    line(2, days_ago(15), '0.01'),
                    ), credit=D('249.99'))], POLICIES, TODAY)

    assert decisions.changes == (
        LevelChange(1, 7, REMINDER.id, None),
        LevelChange(2, 7, REMINDER.id, None),
        )
    assert decisions.messages[0].amount == D('250.01')
    assert decisions.skipped == ()


def test_credit_is_used_by_lines_not_yet_reached():
    decisions = decide([PartyFacts(7, (
                    line(1, days_ago(-30), '80.00'),
                    line(2, days_ago(-40), '30.00'),
                    ), credit=D('80.00'))], POLICIES, TODAY)

    assert decisions.skipped == (
        Skip(1, 7, SKIP_COVERED_BY_CREDIT), Skip(2, 7, SKIP_NOT_REACHED))


def test_unreachable_party_gets_a_letter_and_a_task():
    decisions = decide(
        [PartyFacts(7, (line(1, days_ago(0)),))], POLICIES, TODAY)

    assert decisions.messages == (
        Message(7, COURTESY.id, LETTER, (1,), D('100.00'), TODAY,
            key(7, LETTER, COURTESY.id), REMINDER.id, days_ago(-10)),)
    assert decisions.actions == (
        Action(7, NO_CONTACT_TASK, COURTESY.id, (1,), D('100.00')),)


def test_level_listing_letter_needs_no_contact_task():
    decisions = decide(
        [PartyFacts(7, (line(1, days_ago(10)),))], POLICIES, TODAY)

    assert [m.channel for m in decisions.messages] == [LETTER]
    assert [a.kind for a in decisions.actions] == [FEE]


def test_channel_listed_twice_is_sent_once():
    twice = Policy(1, (LevelRule(5, 0, channels=(LETTER, EMAIL, LETTER)),))

    decisions = decide(
        [PartyFacts(7, (line(1, days_ago(0)),), reachable=frozenset({EMAIL}))],
        {1: twice}, TODAY)

    assert [m.channel for m in decisions.messages] == [LETTER, EMAIL]


def test_level_without_channel_sends_nothing():
    silent = Policy(1, (LevelRule(5, 0, fee=True),))

    decisions = decide(
        [PartyFacts(7, (line(1, days_ago(0)),))], {1: silent}, TODAY)

    assert decisions.changes == (LevelChange(1, 7, 5, None),)
    assert decisions.messages == ()
    assert decisions.actions == (Action(7, FEE, 5, (1,)),)


def test_block_then_unblock_ordering():
    party = PartyFacts(7, (line(1, days_ago(30)), line(2, days_ago(65))))

    blocked = decide([party], POLICIES, TODAY)
    party = apply(party, blocked)
    next_day = decide([party], POLICIES, TODAY + dt.timedelta(days=1))
    disputed = replace(party, lines=tuple(
            replace(l, disputed=True) for l in party.lines))
    unblocked = decide([disputed], POLICIES, TODAY + dt.timedelta(days=1))

    assert [(a.kind, a.level_id, a.line_ids) for a in blocked.actions] == [
        (FEE, REMINDER.id, (1, 2)), (INTEREST, NOTICE.id, (1, 2)),
        (BLOCK_ORDERING, NOTICE.id, (1, 2)), (COLLECTION, LAST.id, (2,)),
        (CALL_TASK, LAST.id, (1, 2))]
    assert party.ordering_blocked
    assert next_day == Decisions()
    assert unblocked == Decisions(
        actions=(Action(7, UNBLOCK_ORDERING, None),))


def test_block_ordering_once_per_party_and_not_when_blocked():
    lines = (line(1, days_ago(30)), line(2, days_ago(65)))

    open_party = decide([PartyFacts(7, lines)], POLICIES, TODAY)
    blocked_party = decide(
        [PartyFacts(7, lines, ordering_blocked=True)], POLICIES, TODAY)

    assert [(a.kind, a.level_id) for a in open_party.actions
        if a.kind == BLOCK_ORDERING] == [(BLOCK_ORDERING, NOTICE.id)]
    assert BLOCK_ORDERING not in [a.kind for a in blocked_party.actions]


def test_settled_dispute_blocks_ordering_again():
    party = PartyFacts(7, (line(1, days_ago(40), level_id=NOTICE.id),))

    decisions = decide([party], POLICIES, TODAY)

    assert decisions == Decisions(
        actions=(Action(7, BLOCK_ORDERING, NOTICE.id, (1,), D('100.00')),))


def test_party_without_lines_is_unblocked():
    decisions = decide(
        [PartyFacts(7, (), ordering_blocked=True)], POLICIES, TODAY)

    assert decisions == Decisions(
        actions=(Action(7, UNBLOCK_ORDERING, None),))


def test_interest_per_line_and_none_when_zero():
    courtesy_interest = Policy(1, (
            replace(COURTESY, interest_rate=D('0.08')), NOTICE))

    decisions = decide([PartyFacts(7, (
                    line(2, days_ago(30), '1000.00'),
                    line(1, days_ago(31), '500.00'),
                    line(3, days_ago(-3), '800.00'),
                    ))], {1: courtesy_interest}, TODAY)

    # 500.00 * 0.08 * 31 / 365 = 3.397...; 1000.00 * 0.08 * 30 / 365 = 6.575...
    assert [a for a in decisions.actions if a.kind == INTEREST] == [
        Action(7, INTEREST, NOTICE.id, (1, 2), D('9.98'),
            ((1, D('3.40')), (2, D('6.58'))))]


def test_next_level():
    assert next_level(POLICY, None, TODAY) == (
        COURTESY, TODAY - dt.timedelta(days=7))
    assert next_level(POLICY, REMINDER.id, TODAY) == (
        NOTICE, TODAY + dt.timedelta(days=30))
    assert next_level(POLICY, LAST.id, TODAY) == (None, None)


def test_levels_at_the_same_offset_follow_sequence_then_id():
    policy = Policy(1, (
            LevelRule(3, 0, sequence=1), LevelRule(2, 0, sequence=1),
            LevelRule(1, 0, sequence=2)))

    assert next_level(policy, None, TODAY)[0].id == 2
    assert next_level(policy, 2, TODAY)[0].id == 3
    assert next_level(policy, 3, TODAY)[0].id == 1


# Properties over random parties, lines and policies

CHANNELS = (EMAIL, LETTER, 'sms')


@st.composite
def policies(draw):
    level_ids = iter(range(1, 100))
    result = {}
    for procedure_id in (1, 2):
        levels = draw(st.lists(st.builds(
                    LevelRule,
                    id=st.just(0),
                    offset_days=st.integers(-10, 90),
                    sequence=st.integers(0, 2),
                    channels=st.lists(st.sampled_from(CHANNELS), max_size=3)
                    .map(tuple),
                    fee=st.booleans(),
                    interest_rate=st.sampled_from(
                        [None, D(0), D('0.05'), D('0.08'), D('0.125')]),
                    block_ordering=st.booleans(),
                    collection=st.booleans(),
                    call_task=st.booleans()),
                max_size=4))
        result[procedure_id] = Policy(procedure_id, tuple(
                replace(level, id=next(level_ids)) for level in levels))
    return result


cents = st.integers(1, 500_000).map(lambda cents: D(cents) / 100)


@st.composite
def scenarios(draw):
    policy_of = draw(policies())
    line_ids = iter(range(1, 1000))
    parties = []
    for party_id in draw(st.sets(st.integers(1, 20), max_size=4)):
        lines = []
        for _ in range(draw(st.integers(0, 6))):
            procedure_id = draw(st.sampled_from([None, 1, 2, 3]))
            known = [l.id for l in policy_of[procedure_id].levels] if (
                procedure_id in policy_of) else []
            lines.append(OpenLine(
                    id=next(line_ids), party_id=party_id,
                    procedure_id=procedure_id,
                    maturity_date=TODAY + dt.timedelta(
                        days=draw(st.integers(-120, 30))),
                    amount=draw(cents),
                    level_id=draw(st.sampled_from([None, 99] + known)),
                    disputed=draw(st.booleans()),
                    payment_processing=draw(st.booleans())))
        parties.append(PartyFacts(
                party_id, tuple(lines),
                credit=draw(st.one_of(st.just(D(0)), cents)),
                reachable=frozenset(draw(st.sets(st.sampled_from(CHANNELS)))),
                ordering_blocked=draw(st.booleans())))
    return parties, policy_of


def apply(party, decisions):
    "The party as the Tryton layer leaves it after writing the decisions."
    levels = {c.line_id: c.level_id for c in decisions.changes}
    kinds = {a.kind for a in decisions.actions if a.party_id == party.party_id}
    return replace(
        party,
        lines=tuple(
            replace(l, level_id=levels.get(l.id, l.level_id))
            for l in party.lines),
        ordering_blocked=(
            BLOCK_ORDERING in kinds
            or party.ordering_blocked and UNBLOCK_ORDERING not in kinds))


def rank(policy_of, procedure_id, level_id):
    ordered = sorted(
        policy_of[procedure_id].levels,
        key=lambda level: (level.offset_days, level.sequence, level.id))
    ids = [level.id for level in ordered]
    return ids.index(level_id) if level_id in ids else -1


def lines_by_id(parties):
    return {l.id: l for party in parties for l in party.lines}


@settings(deadline=None)
@given(scenarios(), st.randoms())
def test_decisions_do_not_depend_on_input_order(scenario, random):
    parties, policy_of = scenario
    shuffled = [
        replace(party, lines=tuple(
                random.sample(party.lines, len(party.lines))))
        for party in random.sample(parties, len(parties))]

    decisions = decide(parties, policy_of, TODAY)

    assert decide(parties, policy_of, TODAY) == decisions
    assert decide(shuffled, policy_of, TODAY) == decisions
    assert decide(shuffled, policy_of, TODAY).skipped == decisions.skipped


@settings(deadline=None)
@given(scenarios(), st.integers(0, 120))
def test_levels_never_go_down(scenario, later):
    parties, policy_of = scenario
    lines = lines_by_id(parties)

    first = decide(parties, policy_of, TODAY)
    parties = [apply(party, first) for party in parties]
    second = decide(parties, policy_of, TODAY + dt.timedelta(days=later))

    for change in first.changes + second.changes:
        procedure_id = lines[change.line_id].procedure_id
        assert rank(policy_of, procedure_id, change.level_id) > rank(
            policy_of, procedure_id, change.previous_level_id)
    assert {c.line_id: c.previous_level_id for c in second.changes} == {
        c.line_id: lines_by_id(parties)[c.line_id].level_id
        for c in second.changes}


@settings(deadline=None)
@given(scenarios())
def test_running_twice_the_same_day_decides_nothing_more(scenario):
    parties, policy_of = scenario

    first = decide(parties, policy_of, TODAY)
    again = decide(
        [apply(party, first) for party in parties], policy_of, TODAY)

    assert again == Decisions()


@settings(deadline=None)
@given(scenarios())
def test_nothing_for_disputed_or_processing_lines(scenario):
    parties, policy_of = scenario
    held = {
        l.id for l in lines_by_id(parties).values()
        if l.disputed or l.payment_processing}

    decisions = decide(parties, policy_of, TODAY)

    touched = {c.line_id for c in decisions.changes}
    touched.update(*(m.line_ids for m in decisions.messages))
    touched.update(*(a.line_ids for a in decisions.actions))
    touched.update(id for a in decisions.actions for id, _ in a.amounts)
    assert not touched & held
    assert all(
        s.reason in {SKIP_DISPUTED, SKIP_PAYMENT_PROCESSING, SKIP_NO_PROCEDURE}
        for s in decisions.skipped if s.line_id in held)


def height(policy_of, procedure_id, level_id):
    level = {l.id: l for l in policy_of[procedure_id].levels}[level_id]
    return level.offset_days, rank(policy_of, procedure_id, level_id)


@settings(deadline=None)
@given(scenarios())
def test_one_message_per_party_and_channel_at_its_highest_level(scenario):
    parties, policy_of = scenario
    lines = lines_by_id(parties)

    decisions = decide(parties, policy_of, TODAY)

    counts = Counter((m.party_id, m.channel) for m in decisions.messages)
    assert set(counts.values()) <= {1}
    assert len({m.key for m in decisions.messages}) == len(decisions.messages)
    for message in decisions.messages:
        changed = [c for c in decisions.changes
            if c.party_id == message.party_id]
        highest = max(height(policy_of, lines[c.line_id].procedure_id,
                c.level_id) for c in changed)
        procedure_id = next(lines[c.line_id].procedure_id for c in changed
            if c.level_id == message.level_id)
        assert height(policy_of, procedure_id, message.level_id) == highest
        assert {c.line_id for c in changed} <= set(message.line_ids)
        assert message.amount == sum(
            (lines[id].amount for id in message.line_ids), D(0))
        assert list(message.line_ids) == sorted(message.line_ids)


@settings(deadline=None)
@given(scenarios())
def test_every_line_is_charged_once_for_the_levels_it_passed(scenario):
    parties, policy_of = scenario
    lines = lines_by_id(parties)

    decisions = decide(parties, policy_of, TODAY)

    moved = {c.line_id: c for c in decisions.changes}
    assert len(moved) == len(decisions.changes)
    for kind in (FEE, INTEREST, COLLECTION):
        charged = [l for a in decisions.actions if a.kind == kind
            for l in a.line_ids]
        assert len(charged) == len(set(charged))
        for action in decisions.actions:
            if action.kind != kind:
                continue
            for line_id in action.line_ids:
                procedure_id = lines[line_id].procedure_id
                change = moved[line_id]
                assert rank(policy_of, procedure_id, change.previous_level_id
                    ) < rank(policy_of, procedure_id, action.level_id
                    ) <= rank(policy_of, procedure_id, change.level_id)


@settings(deadline=None)
@given(scenarios(), st.integers(1, 120))
def test_ordering_blocked_while_a_line_sits_at_or_past_a_blocking_level(
        scenario, later):
    parties, policy_of = scenario

    first = decide(parties, policy_of, TODAY)
    parties = [apply(party, first) for party in parties]
    second = decide(parties, policy_of, TODAY + dt.timedelta(days=later))
    parties = [apply(party, second) for party in parties]

    for party in parties:
        assert party.ordering_blocked == any(
            not l.disputed and l.procedure_id in policy_of
            and l.level_id in blocking_level_ids(policy_of[l.procedure_id])
            for l in party.lines)


@settings(deadline=None)
@given(scenarios())
def test_no_level_charges_or_hands_over_a_line_twice_over_the_runs(
        scenario):
    parties, policy_of = scenario
    charged = Counter()

    for day in range(0, 130, 7):
        decisions = decide(parties, policy_of, TODAY + dt.timedelta(days=day))
        parties = [apply(party, decisions) for party in parties]
        charged.update((a.kind, a.level_id, l) for a in decisions.actions
            if a.kind in {FEE, INTEREST, COLLECTION} for l in a.line_ids)

    assert set(charged.values()) <= {1}
