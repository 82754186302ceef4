"""Rounding, late-payment interest and instalments.

Interest is simple, on a 365-day year, rounded once per line like any amount
of the company currency (half to even, as Tryton's ``Currency.round``):

    1000.00 at 8 % for 30 days = 1000.00 * 0.08 * 30 / 365 = 6.5753... -> 6.58
      36.50 at 5 % for  5 days =   36.50 * 0.05 *  5 / 365 = 0.025     -> 0.02
     109.50 at 5 % for  5 days =  109.50 * 0.05 *  5 / 365 = 0.075     -> 0.08

Instalments split a total into equal amounts rounded down to the currency,
the remainder on the last one, so that they sum to the total exactly; the
dates follow each other by whole months (the day of the first date, or the
month's last day when shorter) or by days:

    1000.00 in 3 from 2026-01-31 monthly  -> 2026-01-31  333.33
                                             2026-02-28  333.33
                                             2026-03-31  333.34
    1000 JPY in 3 (rounding 1) every 14 days from 2026-11-24
                                          -> 2026-11-24  333
                                             2026-12-08  333
                                             2026-12-22  334
"""
import calendar
import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

DAYS_PER_YEAR = 365


def round_money(amount: Decimal, rounding: Decimal) -> Decimal:
    "Round amount to a multiple of rounding, half to even."
    if not rounding:
        return amount
    with localcontext() as ctx:
        # Enough digits that quantizing a large amount cannot fail.
        ctx.prec = max(ctx.prec, (amount / rounding).adjusted() + 1)
        # Going through units of rounding also handles steps such as 0.05.
        units = (amount / rounding).quantize(
            Decimal(1), rounding=ROUND_HALF_EVEN)
        return units * rounding


def interest(
        amount: Decimal, annual_rate: Decimal, days: int,
        rounding: Decimal) -> Decimal:
    "Simple interest on amount for days, rounded to the currency."
    return round_money(amount * annual_rate * days / DAYS_PER_YEAR, rounding)


def add_months(date: dt.date, months: int) -> dt.date:
    "date moved by months, on the month's last day when it is shorter"
    index = date.year * 12 + date.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date.replace(year=year, month=month,
        day=min(date.day, calendar.monthrange(year, month)[1]))


def instalment_dates(
        first_date: dt.date, count: int, months: int = 0, days: int = 0
        ) -> tuple[dt.date, ...]:
    """count dates from first_date, each months and days after the one
    before, counted from first_date so that a short month does not pull
    the next dates back"""
    if count < 1:
        raise ValueError("count must be at least 1")
    if count > 1 and (months < 0 or days < 0 or not (months or days)):
        raise ValueError("instalments need a step forward")
    return tuple(
        add_months(first_date, months * i) + dt.timedelta(days=days * i)
        for i in range(count))


def instalments(
        total: Decimal, count: int, first_date: dt.date, rounding: Decimal,
        months: int = 0, days: int = 0,
        ) -> tuple[tuple[dt.date, Decimal], ...]:
    """total split in count (date, amount) from first_date, every months
    and days: equal amounts rounded down to a multiple of rounding, the
    remainder on the last instalment, so that they sum to total exactly."""
    if total < 0:
        raise ValueError("total must not be negative")
    if rounding <= 0:
        raise ValueError("rounding must be positive")
    dates = instalment_dates(first_date, count, months, days)
    with localcontext() as ctx:
        # Enough digits that total / rounding and the sums are exact.
        ctx.prec = max(ctx.prec, total.adjusted() - min(
                rounding.adjusted(), total.as_tuple().exponent) + 3)
        if total % rounding:
            raise ValueError("total must be a multiple of rounding")
        amount = int(total / rounding) // count * rounding
        amounts = [amount] * (count - 1) + [total - amount * (count - 1)]
    return tuple(zip(dates, amounts))
