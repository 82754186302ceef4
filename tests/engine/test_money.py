from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from trytond.modules.currency.currency import Currency

from trytond.modules.dunning_advanced.engine import interest, round_money

CENT = Decimal('0.01')

amounts = st.decimals(
    min_value=-10**9, max_value=10**9, places=6, allow_nan=False,
    allow_infinity=False)
roundings = st.sampled_from(
    [Decimal('1'), Decimal('0.1'), CENT, Decimal('0.05'), Decimal('0.001')])


def test_interest_to_the_cent():
    # 1000.00 * 0.08 * 30 = 2400.00; 2400 / 365 = 6.575342...
    assert interest(Decimal('1000.00'), Decimal('0.08'), 30, CENT) == (
        Decimal('6.58'))


def test_interest_half_cent_goes_to_even():
    # 36.50 * 0.05 * 5 / 365 = 0.025 and 109.50 * 0.05 * 5 / 365 = 0.075
    assert interest(Decimal('36.50'), Decimal('0.05'), 5, CENT) == (
        Decimal('0.02'))
    assert interest(Decimal('109.50'), Decimal('0.05'), 5, CENT) == (
        Decimal('0.08'))


def test_interest_of_no_day_is_zero():
    assert interest(Decimal('1000.00'), Decimal('0.08'), 0, CENT) == 0


def test_round_money_half_to_even():
    assert round_money(Decimal('0.125'), CENT) == Decimal('0.12')
    assert round_money(Decimal('0.135'), CENT) == Decimal('0.14')
    assert round_money(Decimal('-0.125'), CENT) == Decimal('-0.12')
    assert round_money(Decimal('0.1251'), CENT) == Decimal('0.13')


def test_round_money_to_a_step_that_is_not_a_power_of_ten():
    assert round_money(Decimal('1.07'), Decimal('0.05')) == Decimal('1.05')
    assert round_money(Decimal('1.025'), Decimal('0.05')) == Decimal('1.00')
    assert round_money(Decimal('1.075'), Decimal('0.05')) == Decimal('1.10')


def test_round_money_without_rounding_keeps_the_amount():
    assert round_money(Decimal('1.2345'), Decimal(0)) == Decimal('1.2345')


@given(amounts, roundings)
def test_round_money_agrees_with_tryton_currency(amount, rounding):
    # Same digits, not only the same value: 1.10 is not 1.1 on a document.
    assert str(round_money(amount, rounding)) == str(
        Currency._round(amount, rounding, 'ROUND_HALF_EVEN'))


@given(amounts, roundings)
def test_round_money_is_a_nearest_multiple(amount, rounding):
    rounded = round_money(amount, rounding)
    assert rounded % rounding == 0
    assert abs(rounded - amount) <= rounding / 2


@given(
    st.integers(min_value=1, max_value=10**9).map(lambda c: c * CENT),
    st.integers(min_value=0, max_value=5000).map(lambda r: r / Decimal(10**4)),
    st.integers(min_value=0, max_value=3650),
    st.integers(min_value=0, max_value=30))
def test_interest_grows_with_the_days(amount, rate, days, more_days):
    earlier = interest(amount, rate, days, CENT)
    assert earlier <= interest(amount, rate, days + more_days, CENT)
    assert abs(earlier - amount * rate * days / 365) <= CENT / 2
