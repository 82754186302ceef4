"""Which segment a customer's payment history puts it in.

The segment chooses the tone, the cadence and the channels of its reminders
(see :mod:`schedule`). It is learnt from the ledger, over a look-back window,
with the thresholds of the policy. The rules are tried in this order and the
first that holds gives the segment:

    high risk        broken payment plans  >= 2
                     or the oldest overdue invoice is >= 60 days late
                     or invoices paid late >= 6
                     or average days late (weighted by amount) >= 30
                     or disputes           >= 3
    repeat late      invoices paid late    >= 2
    first-time late  invoices paid late    >= 1
    new              invoices paid         <  1   (no history yet)
    reliable         otherwise

An invoice is paid late when it was paid more than 2 days (the grace) after
its due date; only invoices paid in the 365 days before the run count, and an
invoice still open is judged by its age alone, so a reliable customer three
days late today is still reliable.

Worked example: the run of 2026-11-24 with the default thresholds.

    Garage Dupont paid, in the window:
        amount   due         paid        days late
        1000.00  2026-03-31  2026-03-30   0 (early)
         500.00  2026-06-30  2026-07-05   5  late
        1500.00  2026-09-30  2026-10-01   1  within the grace
    and owes 300.00 due on 2026-11-21 (3 days late).

    figures: 3 paid, 1 late, average days late
             (1000 * 0 + 500 * 5 + 1500 * 1) / 3000 = 1.33, worst 5,
             overdue 300.00 for 3 days
    segment: first-time late (invoices paid late 1 >= 1)

An invoice paid 5 days late in 2025-10 is outside the window: without the
late payment of July, Garage Dupont would be reliable.
"""
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import Decimal

NEW = 'new'
RELIABLE = 'reliable'
FIRST_LATE = 'first_late'
REPEAT_LATE = 'repeat_late'
HIGH_RISK = 'high_risk'
# From the least to the most risky customer.
RISK_ORDER = (RELIABLE, NEW, FIRST_LATE, REPEAT_LATE, HIGH_RISK)
SEGMENTS = (NEW, RELIABLE, FIRST_LATE, REPEAT_LATE, HIGH_RISK)

# Why a segment was given: the rule that held, named as the threshold.
RULE_BROKEN_PLANS = 'high_risk_broken_plans'
RULE_OVERDUE_DAYS = 'high_risk_overdue_days'
RULE_HIGH_RISK_LATE = 'high_risk_late_count'
RULE_AVERAGE_DAYS = 'high_risk_average_days'
RULE_DISPUTES = 'high_risk_disputes'
RULE_REPEAT_LATE = 'repeat_late_count'
RULE_FIRST_LATE = 'first_late'
RULE_NO_HISTORY = 'new_below_paid'
RULE_ON_TIME = 'on_time'
RULE_PINNED = 'pinned'


@dataclass(frozen=True)
class Thresholds:
    "The limits an accountant sets on the policy"
    window_days: int = 365
    grace_days: int = 2
    new_below_paid: int = 1
    repeat_late_count: int = 2
    high_risk_late_count: int = 6
    high_risk_average_days: int = 30
    high_risk_overdue_days: int = 60
    high_risk_broken_plans: int = 2
    high_risk_disputes: int = 3

    def errors(self) -> tuple[tuple[str, str], ...]:
        """The thresholds that contradict each other, as (field, problem).

        ``problem`` is 'negative', 'overlaps' (the rule would swallow the one
        before it) or 'inverted' (the worse segment would start before the
        better one).
        """
        errors = [(f.name, 'negative') for f in fields(self)
            if getattr(self, f.name) < 0]
        if self.window_days < 1:
            errors.append(('window_days', 'negative'))
        if self.repeat_late_count < 2:
            # One late payment is first-time late by definition.
            errors.append(('repeat_late_count', 'overlaps'))
        if self.high_risk_late_count <= self.repeat_late_count:
            errors.append(('high_risk_late_count', 'inverted'))
        if self.high_risk_average_days <= self.grace_days:
            errors.append(('high_risk_average_days', 'inverted'))
        if self.high_risk_overdue_days <= self.grace_days:
            errors.append(('high_risk_overdue_days', 'inverted'))
        for name in ('high_risk_broken_plans', 'high_risk_disputes'):
            if getattr(self, name) < 1:
                errors.append((name, 'overlaps'))
        return tuple(dict.fromkeys(errors))


@dataclass(frozen=True)
class PaidItem:
    "A receivable paid in full: how much, when it was due and when paid"
    amount: Decimal
    maturity_date: dt.date
    paid_date: dt.date


@dataclass(frozen=True)
class OverdueItem:
    "A receivable still open, not disputed"
    amount: Decimal
    maturity_date: dt.date


@dataclass(frozen=True)
class History:
    """What the ledger says of a party's payments.

    ``disputes`` and ``broken_plans`` count events dated in the window.
    """
    paid: tuple[PaidItem, ...] = ()
    open: tuple[OverdueItem, ...] = ()
    disputes: int = 0
    broken_plans: int = 0


@dataclass(frozen=True)
class Figures:
    "What puts a party in its segment, shown on its form"
    paid_count: int = 0
    late_count: int = 0
    average_days_late: Decimal = Decimal(0)
    worst_days_late: int = 0
    overdue_amount: Decimal = Decimal(0)
    overdue_days: int = 0
    disputes: int = 0
    broken_plans: int = 0


@dataclass(frozen=True)
class Pin:
    "A segment set by an accountant, until a date (included) or for good"
    segment: str
    until: dt.date | None = None

    def holds(self, date: dt.date) -> bool:
        return self.until is None or date <= self.until


@dataclass(frozen=True)
class Classification:
    """The segment of a party, the rule that gave it and its figures.

    ``computed`` is what the history says; it differs from ``segment`` when
    an accountant pinned another one.
    """
    segment: str
    computed: str
    rule: str
    figures: Figures


def figures(history: History, date: dt.date, thresholds: Thresholds
        ) -> Figures:
    "Sum up the history seen on date over the look-back window."
    start = date - dt.timedelta(days=thresholds.window_days)
    paid = [item for item in history.paid
        if start < item.paid_date <= date]
    total = sum((item.amount for item in paid), Decimal(0))
    lateness = [max(0, (item.paid_date - item.maturity_date).days)
        for item in paid]
    weighted = sum(
        (item.amount * days for item, days in zip(paid, lateness)),
        Decimal(0))
    overdue = [item for item in history.open if item.maturity_date < date]
    return Figures(
        paid_count=len(paid),
        late_count=sum(1 for days in lateness
            if days > thresholds.grace_days),
        average_days_late=(
            (weighted / total).quantize(Decimal('0.01')) if total
            else Decimal(0)),
        worst_days_late=max(lateness, default=0),
        overdue_amount=sum((item.amount for item in overdue), Decimal(0)),
        overdue_days=max(
            ((date - item.maturity_date).days for item in overdue),
            default=0),
        disputes=history.disputes,
        broken_plans=history.broken_plans)


def rule_of(figures: Figures, thresholds: Thresholds) -> tuple[str, str]:
    "The segment the figures give and the rule that gave it."
    t = thresholds
    if figures.broken_plans >= t.high_risk_broken_plans:
        return HIGH_RISK, RULE_BROKEN_PLANS
    if figures.overdue_days >= t.high_risk_overdue_days:
        return HIGH_RISK, RULE_OVERDUE_DAYS
    if figures.late_count >= t.high_risk_late_count:
        return HIGH_RISK, RULE_HIGH_RISK_LATE
    if figures.late_count and (
            figures.average_days_late >= t.high_risk_average_days):
        return HIGH_RISK, RULE_AVERAGE_DAYS
    if figures.disputes >= t.high_risk_disputes:
        return HIGH_RISK, RULE_DISPUTES
    if figures.late_count >= t.repeat_late_count:
        return REPEAT_LATE, RULE_REPEAT_LATE
    if figures.late_count >= 1:
        return FIRST_LATE, RULE_FIRST_LATE
    if figures.paid_count < t.new_below_paid:
        return NEW, RULE_NO_HISTORY
    return RELIABLE, RULE_ON_TIME


def classify(
        history: History, date: dt.date, thresholds: Thresholds,
        pin: Pin | None = None) -> Classification:
    "The segment of a party on date: its pin while it holds, else its history"
    party_figures = figures(history, date, thresholds)
    computed, rule = rule_of(party_figures, thresholds)
    if pin and pin.holds(date):
        return Classification(pin.segment, computed, RULE_PINNED,
            party_figures)
    return Classification(computed, computed, rule, party_figures)


def classify_all(
        histories: Iterable[tuple[int, History, Pin | None]],
        date: dt.date, thresholds: Thresholds
        ) -> dict[int, Classification]:
    "classify for each (party id, history, pin)"
    return {party_id: classify(history, date, thresholds, pin)
        for party_id, history, pin in histories}
