"""Payment plans: what a customer may propose and when a plan breaks.

The policy limits the plans its customers may propose on their own: whether
they may at all, how many instalments over how many days, the smallest
instalment, whether the first one is paid on acceptance, which segments may
propose, and from which total an accountant approves the plan first. A plan
breaks when an instalment is still unpaid a number of days after its date.

Worked example: the policy allows plans of at most 6 instalments over at most
120 days, each of at least 50.00, the first paid on acceptance, for every
segment but high risk; plans above 5000.00 wait for an accountant; a plan
breaks 5 days after an unpaid instalment.

    Garage Dupont (first-time late) owes 1000.00 and, on 2026-11-24, asks to
    pay it in 3 monthly instalments:

        2026-11-24  333.33   (paid on acceptance)
        2026-12-24  333.33
        2027-01-24  333.34   (the remainder cent on the last)
                   -------
                   1000.00

    -> within the policy (3 <= 6 instalments, 61 <= 120 days, the smallest
       333.33 >= 50.00, the first due on acceptance) and active at once:
       1000.00 is not above 5000.00.

    The same in 6 monthly instalments ends on 2027-04-24, 151 days away:
    too long (120). In 25 instalments every 4 days: too many (6), and each
    40.00 is below 50.00. Paying it all on 2027-01-15 instead (a new date:
    one instalment) has no first payment on acceptance. Transports Martin,
    high risk, may not propose a plan. A plan of 6000.00 waits for an
    accountant's approval.

    If the instalment of 2026-12-24 is still unpaid, the plan is kept on
    2026-12-28 and broken on 2026-12-29, 5 days after it.

In the ledger, the instalments pay the oldest invoice first: the 1000.00
were invoice A (250.00, the oldest) and invoice B (750.00), so

    A  2026-11-24  250.00
    B  2026-11-24   83.33   2026-12-24  333.33   2027-01-24  333.34
"""
import datetime as dt
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

from .money import instalment_dates, instalments
from .segment import HIGH_RISK, SEGMENTS

# Why a proposal is refused: the limit it goes beyond.
DISABLED = 'disabled'
SEGMENT = 'segment'
NO_AMOUNT = 'no_amount'
TOO_MANY = 'too_many'
TOO_LONG = 'too_long'
BELOW_MINIMUM = 'below_minimum'
FIRST_PAYMENT = 'first_payment'
BEFORE_START = 'before_start'
NOT_INCREASING = 'not_increasing'
NOT_TOTAL = 'not_total'


@dataclass(frozen=True)
class Limits:
    """What a policy lets its customers propose.

    ``approval_above`` is the total above which an accountant approves the
    plan (None: never); ``break_days`` the days after an unpaid
    instalment's date on which the plan breaks.
    """
    allowed: bool = False
    max_instalments: int = 6
    max_days: int = 120
    min_instalment: Decimal = Decimal(0)
    first_payment: bool = True
    segments: frozenset[str] = frozenset(SEGMENTS) - {HIGH_RISK}
    approval_above: Decimal | None = None
    break_days: int = 5

    def errors(self) -> tuple[tuple[str, str], ...]:
        """The limits that make no sense, as (field, problem).

        ``problem`` is 'negative', 'zero' (must be at least 1) or 'inverted'
        (more instalments than days to put them on).
        """
        errors = [(f.name, 'negative') for f in fields(self)
            if isinstance(getattr(self, f.name), (int, Decimal))
            and not isinstance(getattr(self, f.name), bool)
            and getattr(self, f.name) < 0]
        for name in ('max_instalments', 'break_days'):
            if 0 <= getattr(self, name) < 1:
                errors.append((name, 'zero'))
        if 0 <= self.max_days < self.max_instalments - 1:
            # Each instalment needs a day of its own.
            errors.append(('max_days', 'inverted'))
        return tuple(errors)


@dataclass(frozen=True)
class Problem:
    "A limit a proposal goes beyond: the limit and the proposal's value"
    code: str
    limit: object = None
    value: object = None


@dataclass(frozen=True)
class Proposal:
    """The schedule a customer of segment sees on date: the total and its
    instalments, (date, amount), in order"""
    date: dt.date
    total: Decimal
    instalments: tuple[tuple[dt.date, Decimal], ...]
    segment: str | None = None

    @property
    def end(self) -> dt.date:
        return self.instalments[-1][0] if self.instalments else self.date

    @property
    def days(self) -> int:
        return (self.end - self.date).days


@dataclass(frozen=True)
class Verdict:
    """What the policy says of a proposal: the limits it goes beyond and
    whether an accountant must approve it"""
    problems: tuple[Problem, ...] = ()
    approval: bool = False

    @property
    def accepted(self) -> bool:
        return not self.problems


def first_due(date: dt.date, limits: Limits, months: int = 0,
        days: int = 0) -> dt.date:
    """The first instalment's date of a plan accepted on date, one step
    later when no first payment is required"""
    if limits.first_payment:
        return date
    return instalment_dates(date, 2, months, days)[1]


def propose(
        total: Decimal, count: int, date: dt.date, limits: Limits,
        rounding: Decimal, segment: str | None = None, months: int = 0,
        days: int = 0, new_date: dt.date | None = None) -> Proposal:
    """The schedule of total in count instalments every months and days,
    or, with new_date, in one instalment on that date"""
    if new_date is not None:
        schedule = instalments(total, 1, new_date, rounding)
    else:
        schedule = instalments(total, count,
            first_due(date, limits, months, days), rounding, months, days)
    return Proposal(date, total, schedule, segment)


def check(proposal: Proposal, limits: Limits) -> Verdict:
    "The limits of the policy that proposal goes beyond"
    problems = []
    if not limits.allowed:
        problems.append(Problem(DISABLED))
    if proposal.segment not in limits.segments:
        problems.append(Problem(SEGMENT, value=proposal.segment))
    amounts = [amount for _, amount in proposal.instalments]
    dates = [date for date, _ in proposal.instalments]
    if proposal.total <= 0 or not amounts:
        problems.append(Problem(NO_AMOUNT, value=proposal.total))
    if not amounts:
        return Verdict(tuple(problems))
    if sum(amounts) != proposal.total:
        problems.append(Problem(NOT_TOTAL, proposal.total, sum(amounts)))
    if len(amounts) > limits.max_instalments:
        problems.append(Problem(
                TOO_MANY, limits.max_instalments, len(amounts)))
    if dates[0] < proposal.date:
        problems.append(Problem(BEFORE_START, proposal.date, dates[0]))
    if any(later <= earlier for earlier, later in zip(dates, dates[1:])):
        problems.append(Problem(NOT_INCREASING))
    if proposal.days > limits.max_days:
        problems.append(Problem(TOO_LONG, limits.max_days, proposal.days))
    if min(amounts) < limits.min_instalment:
        problems.append(Problem(
                BELOW_MINIMUM, limits.min_instalment, min(amounts)))
    if limits.first_payment and dates[0] != proposal.date:
        problems.append(Problem(FIRST_PAYMENT, proposal.date, dates[0]))
    approval = (limits.approval_above is not None
        and proposal.total > limits.approval_above)
    return Verdict(tuple(problems), approval)


def breaks_on(unpaid: Iterable[dt.date], limits: Limits) -> dt.date | None:
    """The day a plan whose instalments of those dates are unpaid breaks,
    if they stay unpaid; None when nothing is unpaid"""
    earliest = min(unpaid, default=None)
    if earliest is None:
        return None
    return earliest + dt.timedelta(days=limits.break_days)


def broken(unpaid: Iterable[dt.date], date: dt.date, limits: Limits
        ) -> bool:
    "Whether a plan with unpaid instalments of those dates is broken on date"
    end = breaks_on(unpaid, limits)
    return end is not None and end <= date


def allocate(
        debts: Sequence[tuple[Hashable, Decimal]],
        schedule: Sequence[tuple[dt.date, Decimal]]
        ) -> dict[Hashable, tuple[tuple[int, dt.date, Decimal], ...]]:
    """The parts of the instalments that pay each debt, (index of the
    instalment, its date, amount), the debts paid in their order.

    debts are (key, amount) and sum, as the schedule does, to the total.
    """
    if sum(amount for _, amount in debts) != sum(
            amount for _, amount in schedule):
        raise ValueError("the debts and the instalments differ")
    parts = {key: [] for key, _ in debts}
    remaining = [amount for _, amount in schedule]
    index = 0
    for key, owed in debts:
        while owed > 0:
            while not remaining[index]:
                index += 1
            part = min(owed, remaining[index])
            parts[key].append((index, schedule[index][0], part))
            remaining[index] -= part
            owed -= part
    return {key: tuple(value) for key, value in parts.items()}
