"""Rounding and late-payment interest.

Interest is simple, on a 365-day year, rounded once per line like any amount
of the company currency (half to even, as Tryton's ``Currency.round``):

    1000.00 at 8 % for 30 days = 1000.00 * 0.08 * 30 / 365 = 6.5753... -> 6.58
      36.50 at 5 % for  5 days =   36.50 * 0.05 *  5 / 365 = 0.025     -> 0.02
     109.50 at 5 % for  5 days =  109.50 * 0.05 *  5 / 365 = 0.075     -> 0.08
"""
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
