import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trytond.modules.dunning_advanced.engine import (
    FIRST_LATE, HIGH_RISK, SEGMENTS)
from trytond.modules.dunning_advanced.engine.money import (
    add_months, instalments)
from trytond.modules.dunning_advanced.engine.payment_plan import (
    BEFORE_START, BELOW_MINIMUM, DISABLED, FIRST_PAYMENT, NO_AMOUNT,
    NOT_INCREASING, SEGMENT, TOO_LONG, TOO_MANY, Limits, Problem, Proposal,
    Verdict, breaks_on, broken, check, propose)

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
