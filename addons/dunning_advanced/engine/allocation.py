"""What a customer may pay by card, and which invoices the money settles.

The amount goes to the chosen invoices oldest due date first; an invoice
gets what it still owes or what is left, whichever is smaller. A partial
payment must reach the company's minimum; paying the whole of the chosen
invoices is always allowed, however small.

Worked example: invoices still owed, minimum partial payment 50.00, cents:

    invoice  due         left
    11       2026-03-01  300.00
    12       2026-04-01  200.00
    13       2026-05-01   20.00

- 12 and 11 chosen, no amount typed: 500.00; 300.00 settles 11 and
  200.00 settles 12 (the order of the choice does not matter);
- 11 and 12 chosen, 400.00: 300.00 settles 11, 100.00 goes to 12, which
  keeps 100.00 to pay;
- 11 and 12 chosen, 600.00: refused, above their balance of 500.00;
- 11 chosen, 30.00: refused, a partial payment below the minimum of 50.00;
- 13 chosen, 20.00: allowed, below the minimum but settles the invoice;
- 11 chosen, 100.005: refused, not a whole number of cents;
- nothing chosen: refused.
"""
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .money import round_money

NO_INVOICE = 'no_invoice'
NOT_POSITIVE = 'not_positive'
NOT_ROUNDED = 'not_rounded'
ABOVE_BALANCE = 'above_balance'
BELOW_MINIMUM = 'below_minimum'


@dataclass(frozen=True)
class Due:
    "What an invoice still owes, and its earliest open due date"
    invoice_id: int
    amount: Decimal
    due_date: dt.date


@dataclass(frozen=True)
class Allocation:
    "The part of a payment that goes to one invoice"
    invoice_id: int
    amount: Decimal
    settles: bool


@dataclass(frozen=True)
class Split:
    """The allocations of an accepted amount, or the error that refused it
    with the limit it broke (the balance or the minimum)"""
    amount: Decimal | None
    allocations: tuple[Allocation, ...] = ()
    error: str | None = None
    limit: Decimal | None = None


def spread(dues: Iterable[Due], amount: Decimal) -> tuple[Allocation, ...]:
    "amount over the dues oldest first; what is beyond their total is left"
    allocations = []
    left = amount
    for due in sorted(dues, key=lambda d: (d.due_date, d.invoice_id)):
        if left <= 0:
            break
        part = min(left, due.amount)
        allocations.append(
            Allocation(due.invoice_id, part, part == due.amount))
        left -= part
    return tuple(allocations)


def split_payment(
        dues: Iterable[Due], amount: Decimal | None, minimum: Decimal | None,
        rounding: Decimal) -> Split:
    """Check amount (None: the whole balance of dues) against the dues and
    the minimum partial payment, and spread it"""
    dues = [d for d in dues if d.amount > 0]
    if not dues:
        return Split(amount, error=NO_INVOICE)
    balance = sum(d.amount for d in dues)
    if amount is None:
        amount = balance
    if amount <= 0:
        return Split(amount, error=NOT_POSITIVE)
    if round_money(amount, rounding) != amount:
        return Split(amount, error=NOT_ROUNDED, limit=rounding)
    if amount > balance:
        return Split(amount, error=ABOVE_BALANCE, limit=balance)
    if amount < balance and minimum and amount < minimum:
        return Split(amount, error=BELOW_MINIMUM, limit=minimum)
    return Split(amount, spread(dues, amount))
