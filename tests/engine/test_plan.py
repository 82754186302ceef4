import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trytond.modules.dunning_advanced.engine import (
    EMAIL, FEE, FIRST_LATE, HIGH_RISK, LETTER, RELIABLE, SEGMENTS,
    SKIP_IN_PLAN, LevelChange, LevelRule, OpenLine, PartyFacts, Pin, Policy,
    SegmentRule, Skip, decide)
from trytond.modules.dunning_advanced.engine.money import (
    add_months, instalments)
from trytond.modules.dunning_advanced.engine.payment_plan import (
    BEFORE_START, BELOW_MINIMUM, DISABLED, FIRST_PAYMENT, NO_AMOUNT,
    NOT_INCREASING, SEGMENT, TOO_LONG, TOO_MANY, Limits, Problem, Proposal,
    Verdict, allocate, breaks_on, broken, check, propose)

D = Decimal
CENT = D('0.01')
TODAY = dt.date(2026, 11, 24)
# The policy of the example in engine/payment_plan.py.
LIMITS = Limits(allowed=True, max_instalments=6, max_days=120,
    min_instalment=D('50.00'), first_payment=True,
    approval_above=D('5000.00'), break_days=5)

roundings = st.sampled_from([CENT, D(1), D('0.001'), D('0.05')])
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2090, 1, 1))


def test_example_of_the_docstring():
    proposal = propose(D('1000.00'), 3, TODAY, LIMITS, CENT,
        segment=FIRST_LATE, months=1)

    assert proposal.instalments == (
        (dt.date(2026, 11, 24), D('333.33')),
        (dt.date(2026, 12, 24), D('333.33')),
        (dt.date(2027, 1, 24), D('333.34')),
        )
    assert proposal.days == 61
    assert check(proposal, LIMITS) == Verdict((), approval=False)

    six = propose(D('1000.00'), 6, TODAY, LIMITS, CENT, FIRST_LATE, months=1)
    assert six.end == dt.date(2027, 4, 24)
    assert check(six, LIMITS).problems == (Problem(TOO_LONG, 120, 151),)

    many = propose(D('1000.00'), 25, TODAY, LIMITS, CENT, FIRST_LATE, days=4)
    assert check(many, LIMITS).problems == (
        Problem(TOO_MANY, 6, 25), Problem(BELOW_MINIMUM, D('50.00'), D('40')))

    new_date = propose(D('1000.00'), 1, TODAY, LIMITS, CENT, FIRST_LATE,
        new_date=dt.date(2027, 1, 15))
    assert new_date.instalments == ((dt.date(2027, 1, 15), D('1000.00')),)
    assert check(new_date, LIMITS).problems == (
        Problem(FIRST_PAYMENT, TODAY, dt.date(2027, 1, 15)),)

    martin = propose(D('1000.00'), 3, TODAY, LIMITS, CENT, HIGH_RISK,
        months=1)
    assert check(martin, LIMITS).problems == (Problem(SEGMENT,
            value=HIGH_RISK),)

    large = propose(D('6000.00'), 3, TODAY, LIMITS, CENT, FIRST_LATE,
        months=1)
    assert check(large, LIMITS) == Verdict((), approval=True)

    unpaid = [dt.date(2026, 12, 24)]
    assert breaks_on(unpaid, LIMITS) == dt.date(2026, 12, 29)
    assert not broken(unpaid, dt.date(2026, 12, 28), LIMITS)
    assert broken(unpaid, dt.date(2026, 12, 29), LIMITS)
    assert not broken([], dt.date(2027, 12, 29), LIMITS)


def test_instalments_of_the_money_docstring():
    assert instalments(D('1000.00'), 3, dt.date(2026, 1, 31), CENT,
        months=1) == (
        (dt.date(2026, 1, 31), D('333.33')),
        (dt.date(2026, 2, 28), D('333.33')),
        (dt.date(2026, 3, 31), D('333.34')),
        )
    assert instalments(D('1000'), 3, TODAY, D(1), days=14) == (
        (dt.date(2026, 11, 24), D('333')),
        (dt.date(2026, 12, 8), D('333')),
        (dt.date(2026, 12, 22), D('334')),
        )


def test_instalments_refuse_what_cannot_be_split_exactly():
    with pytest.raises(ValueError):
        instalments(D('10.005'), 2, TODAY, CENT, months=1)
    with pytest.raises(ValueError):
        instalments(D('-10.00'), 2, TODAY, CENT, months=1)
    with pytest.raises(ValueError):
        instalments(D('10.00'), 0, TODAY, CENT, months=1)
    with pytest.raises(ValueError):
        instalments(D('10.00'), 2, TODAY, CENT)


@given(
    st.integers(min_value=0, max_value=10**15), roundings,
    st.integers(min_value=1, max_value=120), dates,
    st.integers(min_value=0, max_value=3), st.integers(min_value=0,
        max_value=31))
@settings(max_examples=300)
def test_instalments_sum_exactly_to_the_total(
        units, rounding, count, first, months, days):
    total = units * rounding
    if count > 1 and not (months or days):
        days = 1

    schedule = instalments(total, count, first, rounding, months, days)

    amounts = [amount for _, amount in schedule]
    when = [date for date, _ in schedule]
    assert len(schedule) == count
    assert sum(amounts) == total
    assert all(amount >= 0 and amount % rounding == 0 for amount in amounts)
    # Equal amounts, the remainder (less than one unit each) on the last.
    assert len(set(amounts[:-1])) <= 1
    assert 0 <= amounts[-1] - amounts[0] < count * rounding
    assert when[0] == first
    assert all(earlier < later for earlier, later in zip(when, when[1:]))


@given(dates, st.integers(min_value=-240, max_value=240))
def test_add_months_keeps_the_day_or_ends_the_month(date, months):
    moved = add_months(date, months)
    assert (moved.year * 12 + moved.month) - (
        date.year * 12 + date.month) == months
    assert moved.day == date.day or (
        moved.day < date.day and (moved + dt.timedelta(days=1)).day == 1)


limits = st.builds(Limits,
    allowed=st.booleans(),
    max_instalments=st.integers(min_value=1, max_value=24),
    max_days=st.integers(min_value=30, max_value=730),
    min_instalment=st.integers(min_value=0, max_value=500).map(D),
    first_payment=st.booleans(),
    segments=st.frozensets(st.sampled_from(SEGMENTS)),
    approval_above=st.one_of(st.none(),
        st.integers(min_value=0, max_value=20000).map(D)),
    break_days=st.integers(min_value=1, max_value=30))


@given(limits, st.integers(min_value=0, max_value=10**7), roundings,
    st.integers(min_value=1, max_value=30), st.sampled_from(SEGMENTS),
    st.sampled_from([(1, 0), (0, 7), (0, 14), (2, 0)]), dates)
@settings(max_examples=300)
def test_a_plan_is_accepted_exactly_when_within_every_limit(
        limits, units, rounding, count, segment, step, date):
    total = units * rounding
    months, days = step
    proposal = propose(total, count, date, limits, rounding, segment,
        months=months, days=days)

    verdict = check(proposal, limits)

    amounts = [amount for _, amount in proposal.instalments]
    within = (limits.allowed
        and segment in limits.segments
        and total > 0
        and count <= limits.max_instalments
        and (proposal.end - date).days <= limits.max_days
        and min(amounts) >= limits.min_instalment)
    assert verdict.accepted == within
    assert sum(amounts) == total
    if limits.first_payment:
        assert proposal.instalments[0][0] == date
    else:
        assert proposal.instalments[0][0] > date
    assert verdict.approval == (
        limits.approval_above is not None and total > limits.approval_above)
    codes = {problem.code for problem in verdict.problems}
    assert (DISABLED in codes) != limits.allowed
    assert (TOO_MANY in codes) == (count > limits.max_instalments)
    assert (NO_AMOUNT in codes) == (total <= 0)


def test_hand_made_schedules_are_checked_too():
    proposal = Proposal(TODAY, D('300.00'), (
            (TODAY - dt.timedelta(days=1), D('100.00')),
            (TODAY + dt.timedelta(days=30), D('100.00')),
            (TODAY + dt.timedelta(days=30), D('100.00')),
            ), FIRST_LATE)
    codes = [problem.code for problem in check(proposal, LIMITS).problems]
    assert codes == [BEFORE_START, NOT_INCREASING, FIRST_PAYMENT]


def test_limits_that_make_no_sense():
    assert LIMITS.errors() == ()
    assert Limits(max_instalments=-1, min_instalment=D('-5'),
        approval_above=D('-1')).errors() == (
        ('max_instalments', 'negative'), ('min_instalment', 'negative'),
        ('approval_above', 'negative'))
    assert Limits(max_instalments=0, break_days=0).errors() == (
        ('max_instalments', 'zero'), ('break_days', 'zero'))
    assert Limits(max_instalments=12, max_days=5).errors() == (
        ('max_days', 'inverted'),)


# The procedure of the example in engine/schedule.py.
COURTESY = LevelRule(1, -7, channels=(EMAIL,))
REMINDER = LevelRule(2, 10, channels=(EMAIL, LETTER), fee=True)
NOTICE = LevelRule(
    3, 30, channels=(LETTER,), interest_rate=D('0.08'), block_ordering=True)
POLICY = Policy(1, (COURTESY, REMINDER, NOTICE))


def plan_line(id, due, **values):
    return OpenLine(id, 9, 1, due, D('300.00'), **values)


def test_plans_in_the_schedule_docstring():
    party = PartyFacts(9, (
            plan_line(30, dt.date(2026, 11, 30), paused=True),
            plan_line(31, dt.date(2026, 11, 20), paused=True),
            plan_line(32, dt.date(2026, 11, 20), resume_level_id=2),
            ), reachable=frozenset({EMAIL}))

    decisions = decide([party], {1: POLICY}, TODAY)

    assert decisions.changes == (
        LevelChange(30, 9, 1, None), LevelChange(32, 9, 2, None))
    assert [(m.level_id, m.channel, m.line_ids)
        for m in decisions.messages] == [
        (2, EMAIL, (30, 32)), (2, LETTER, (30, 32))]
    assert decisions.actions == ()
    assert decisions.skipped == (Skip(31, 9, SKIP_IN_PLAN),)


def test_a_paused_line_gets_the_courtesy_its_segment_skips():
    policy = replace(POLICY, segments=(SegmentRule(
                RELIABLE, skipped_level_ids=frozenset({COURTESY.id})),))
    pinned = Pin(RELIABLE)
    due_soon = dt.date(2026, 11, 28)
    paused = PartyFacts(9, (plan_line(30, due_soon, paused=True),),
        reachable=frozenset({EMAIL}), pin=pinned)
    free = PartyFacts(9, (plan_line(30, due_soon),),
        reachable=frozenset({EMAIL}), pin=pinned)

    assert decide([paused], {1: policy}, TODAY).changes == (
        LevelChange(30, 9, 1, None),)
    assert decide([free], {1: policy}, TODAY).changes == ()


def test_a_paused_line_never_goes_past_the_due_date():
    long_overdue = plan_line(30, dt.date(2026, 8, 1), paused=True, level_id=1)
    decisions = decide([PartyFacts(9, (long_overdue,))], {1: POLICY}, TODAY)
    assert decisions.changes == ()
    assert decisions.messages == ()
    assert decisions.skipped == (Skip(30, 9, SKIP_IN_PLAN),)


def test_a_resumed_line_goes_on_with_the_sequence():
    # Back at level 2 by the run after the break, it reaches level 3 when
    # 30 days late like any line, and is charged what level 3 charges.
    resumed = plan_line(32, dt.date(2026, 10, 25), resume_level_id=2,
        level_id=2)
    decisions = decide([PartyFacts(9, (resumed,))], {1: POLICY}, TODAY)
    assert decisions.changes == (LevelChange(32, 9, 3, 2),)
    assert [a.kind for a in decisions.actions] == [
        'interest', 'block_ordering']


def test_a_resumed_line_returns_to_a_level_its_segment_gets():
    # High risk now skips level 2: the line returns to the courtesy level
    # it had passed, the last one at or before 2 that the segment gets.
    policy = replace(POLICY, segments=(SegmentRule(
                HIGH_RISK, skipped_level_ids=frozenset({REMINDER.id})),))
    resumed = plan_line(32, dt.date(2026, 12, 20), resume_level_id=2)
    party = PartyFacts(9, (resumed,), pin=Pin(HIGH_RISK))
    assert decide([party], {1: policy}, TODAY).changes == (
        LevelChange(32, 9, 1, None),)


@given(st.lists(st.tuples(
            st.integers(min_value=-60, max_value=90), st.booleans(),
            st.sampled_from([None, 1, 2, 3]),
            st.sampled_from([None, 1, 2, 3])),
        min_size=1, max_size=8))
def test_paused_lines_get_no_overdue_level_and_resumed_none_below(rows):
    lines = tuple(
        plan_line(index, TODAY - dt.timedelta(days=late), paused=paused,
            level_id=level, resume_level_id=None if paused else resume)
        for index, (late, paused, level, resume) in enumerate(rows))
    decisions = decide([PartyFacts(9, lines)], {1: POLICY}, TODAY)
    by_id = {line.id: line for line in lines}
    offsets = {level.id: level.offset_days for level in POLICY.levels}
    for change in decisions.changes:
        line = by_id[change.line_id]
        if line.paused:
            assert offsets[change.level_id] < 0
            assert line.maturity_date > TODAY
        if line.resume_level_id:
            assert offsets[change.level_id] >= offsets[line.resume_level_id]
    for action in decisions.actions:
        if action.kind == FEE:
            assert all(by_id[l].resume_level_id is None
                or offsets[by_id[l].resume_level_id] < offsets[action.level_id]
                for l in action.line_ids)


def test_instalments_pay_the_oldest_invoice_first():
    schedule = propose(D('1000.00'), 3, TODAY, LIMITS, CENT, FIRST_LATE,
        months=1).instalments
    assert allocate([('A', D('250.00')), ('B', D('750.00'))], schedule) == {
        'A': ((0, dt.date(2026, 11, 24), D('250.00')),),
        'B': ((0, dt.date(2026, 11, 24), D('83.33')),
            (1, dt.date(2026, 12, 24), D('333.33')),
            (2, dt.date(2027, 1, 24), D('333.34'))),
        }
    with pytest.raises(ValueError):
        allocate([('A', D('999.99'))], schedule)


@given(
    st.lists(st.integers(min_value=1, max_value=10**6), min_size=1,
        max_size=6),
    st.integers(min_value=1, max_value=12), roundings)
def test_allocated_parts_add_up_per_invoice_and_per_instalment(
        debts, count, rounding):
    debts = [(key, units * rounding) for key, units in enumerate(debts)]
    total = sum(amount for _, amount in debts)
    schedule = instalments(total, count, TODAY, rounding, months=1)

    parts = allocate(debts, schedule)

    for key, amount in debts:
        assert sum(part for _, _, part in parts[key]) == amount
        assert all(part > 0 and part % rounding == 0
            for _, _, part in parts[key])
    for index, (date, amount) in enumerate(schedule):
        shares = [(when, part) for key in parts
            for i, when, part in parts[key] if i == index]
        assert sum(part for _, part in shares) == amount
        assert all(when == date for when, _ in shares)
    # Each invoice is paid after the one before it.
    last = [max(i for i, _, _ in parts[key]) for key, _ in debts]
    first = [min(i for i, _, _ in parts[key]) for key, _ in debts]
    assert all(later >= earlier
        for earlier, later in zip(last, first[1:]))
