import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trytond.modules.dunning_advanced.engine.allocation import (
    ABOVE_BALANCE, BELOW_MINIMUM, NO_INVOICE, NOT_POSITIVE, NOT_ROUNDED,
    Allocation, Due, split_payment, spread)

CENT = Decimal('0.01')
MINIMUM = Decimal('50.00')
# The docstring's example
DUES = {
    11: Due(11, Decimal('300.00'), dt.date(2026, 3, 1)),
    12: Due(12, Decimal('200.00'), dt.date(2026, 4, 1)),
    13: Due(13, Decimal('20.00'), dt.date(2026, 5, 1)),
    }


def split(ids, amount):
    return split_payment([DUES[i] for i in ids],
        None if amount is None else Decimal(amount), MINIMUM, CENT)


def test_whole_balance_of_the_choice_oldest_first():
    result = split([12, 11], None)
    assert result.error is None and result.amount == Decimal('500.00')
    assert result.allocations == (
        Allocation(11, Decimal('300.00'), True),
        Allocation(12, Decimal('200.00'), True))


def test_partial_payment_settles_the_oldest_and_leaves_the_rest():
    assert split([11, 12], '400.00').allocations == (
        Allocation(11, Decimal('300.00'), True),
        Allocation(12, Decimal('100.00'), False))


def test_refusals_name_the_limit():
    above = split([11, 12], '600.00')
    assert (above.error, above.limit, above.allocations) == (
        ABOVE_BALANCE, Decimal('500.00'), ())
    below = split([11], '30.00')
    assert (below.error, below.limit) == (BELOW_MINIMUM, MINIMUM)
    assert split([11], '100.005').error == NOT_ROUNDED
    assert split([], None).error == NO_INVOICE
    assert split([11], '0').error == NOT_POSITIVE
    assert split([11], '-5').error == NOT_POSITIVE


def test_small_invoice_paid_in_full_below_the_minimum():
    assert split([13], '20.00').allocations == (
        Allocation(13, Decimal('20.00'), True),)


def test_nothing_left_to_pay_is_no_invoice():
    paid = Due(14, Decimal('0.00'), dt.date(2026, 1, 1))
    assert split_payment([paid], None, MINIMUM, CENT).error == NO_INVOICE


cents = st.integers(min_value=1, max_value=10**7).map(
    lambda c: Decimal(c) * CENT)
dues = st.lists(st.tuples(cents, st.dates()), min_size=1, max_size=8).map(
    lambda items: [Due(i, a, d) for i, (a, d) in enumerate(items, 1)])


@given(dues, st.integers(min_value=1, max_value=10**8))
def test_accepted_amount_is_spread_exactly(dues, amount_cents):
    amount = Decimal(amount_cents) * CENT
    result = split_payment(dues, amount, MINIMUM, CENT)
    balance = sum(d.amount for d in dues)
    if result.error:
        assert amount > balance or amount < MINIMUM
        return
    assert sum(a.amount for a in result.allocations) == amount
    owed = {d.invoice_id: d.amount for d in dues}
    assert all(0 < a.amount <= owed[a.invoice_id]
        for a in result.allocations)
    assert [a.settles for a in result.allocations] == [
        a.amount == owed[a.invoice_id] for a in result.allocations]
    assert all(a.settles for a in result.allocations[:-1]), (
        "only the last invoice reached may keep something to pay")


@given(dues, cents)
def test_spread_never_gives_more_than_owed_or_paid(dues, amount):
    allocations = spread(dues, amount)
    assert sum(a.amount for a in allocations) == min(
        amount, sum(d.amount for d in dues))
