"""When a reminder may reach the customer: quiet hours, frequency caps and
merging.

Worked example: the run decides at 2026-03-27 06:00 UTC (a Friday), with the
default rules: messages between 08:00 and 20:00 on working days in the
customer's time zone, no message on the public holidays of the company's
country, at most 3 reminders per 7 days and at most 1 SMS per 3 days; letters
are posted, not received at night, and are neither deferred nor counted.

    party  zone               already in the outbox            today
    7      Europe/Paris       -                                email level 1
    8      America/New_York   -                                email level 1
    9      Europe/Paris       SMS sent 2026-03-25 09:00 UTC     SMS level 2
    10     Europe/Paris       emails sent on 03-21, 03-23 and   email level 3
                              03-25 at 09:00 UTC
    11     Europe/Paris       email level 1 deferred, lines     email level 2
                              30, 31; not sent yet              for line 32

Decisions:

- party 7: 07:00 in Paris is quiet: sent at 08:00 Paris, 07:00 UTC;
- party 8: 02:00 in New York: sent at 08:00 New York, 12:00 UTC; the zone
  knows that New York changed to summer time on 03-08 and Paris only on
  03-29, so the gap is 5 hours that day, not 6;
- party 9: one SMS in 3 days is reached until 03-28 09:00 UTC, a Saturday:
  deferred to Monday 03-30 08:00 Paris (06:00 UTC, summer time by then);
- party 10: three emails in the 7 days before; the oldest leaves the window
  on 03-28 09:00 UTC, a Saturday, so deferred to Monday 08:00 Paris;
- party 11: one email for lines 30, 31 and 32 at level 2, which replaces the
  deferred one: the customer gets one message, no line is forgotten.
"""
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from zoneinfo import ZoneInfo

from .model import LETTER, Message, Sent

UTC = dt.timezone.utc
WORKING_DAYS = frozenset(range(5))  # Monday is 0


@dataclass(frozen=True)
class QuietHours:
    """The hours a channel may reach a customer, in the customer's zone.

    ``start`` to ``end`` on ``days`` (Monday is 0); on the company's public
    holidays too unless ``holidays`` is set.
    """
    start: dt.time = dt.time(8)
    end: dt.time = dt.time(20)
    days: frozenset[int] = WORKING_DAYS
    holidays: bool = True

    def errors(self) -> tuple[str, ...]:
        errors = []
        if self.start >= self.end:
            errors.append('start_after_end')
        if not self.days:
            errors.append('no_day')
        return tuple(errors)


@dataclass(frozen=True)
class Cap:
    """At most ``count`` messages in ``days`` days, on ``channel`` or, when
    it is None, on every channel but letters."""
    count: int
    days: int
    channel: str | None = None

    def counts(self, channel: str) -> bool:
        return channel != LETTER and self.channel in {None, channel}


DEFAULT_CAPS = (Cap(1, 3, 'sms'), Cap(3, 7))


@dataclass(frozen=True)
class Rules:
    """The company's rules: quiet hours by channel (``default_hours`` for
    the others), caps, public holidays and the zone of customers whose own
    zone is unknown."""
    hours: tuple[tuple[str, QuietHours], ...] = ()
    default_hours: QuietHours = QuietHours()
    caps: tuple[Cap, ...] = DEFAULT_CAPS
    holidays: frozenset[dt.date] = frozenset()
    zone: str = 'UTC'

    def hours_of(self, channel: str) -> QuietHours:
        return dict(self.hours).get(channel, self.default_hours)

    @property
    def window(self) -> dt.timedelta:
        "How far back the outbox matters"
        return dt.timedelta(days=max((c.days for c in self.caps), default=0))


QUIET_HOURS = 'quiet_hours'
CAPPED = 'cap'


def next_allowed(moment: dt.datetime, zone: str, hours: QuietHours,
        holidays: frozenset[dt.date] = frozenset()) -> dt.datetime:
    """The first time from moment (aware) when hours allow a message to a
    customer in zone, in UTC.

    >>> next_allowed(dt.datetime(2026, 3, 27, 6, tzinfo=UTC),
    ...     'Europe/Paris', QuietHours()).isoformat()
    '2026-03-27T07:00:00+00:00'
    """
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    for _ in range(370):
        day = local.date()
        allowed_day = day.weekday() in hours.days and not (
            hours.holidays and day in holidays)
        if allowed_day:
            opening = dt.datetime.combine(day, hours.start, tz)
            closing = dt.datetime.combine(day, hours.end, tz)
            if local < opening:
                return opening.astimezone(UTC)
            if local < closing:
                return local.astimezone(UTC)
        local = dt.datetime.combine(day + dt.timedelta(days=1),
            dt.time(0), tz)
    raise ValueError('no allowed day within a year')


def capped_until(moment: dt.datetime, channel: str, caps: Iterable[Cap],
        planned: Iterable[tuple[str, dt.datetime]]) -> dt.datetime | None:
    """The time a cap frees a message on channel at moment, or None when no
    cap holds it back."""
    latest = None
    planned = list(planned)
    for cap in caps:
        if not cap.counts(channel):
            continue
        window = dt.timedelta(days=cap.days)
        within = sorted(at for other, at in planned
            if cap.counts(other) and moment - window < at <= moment)
        if len(within) >= cap.count:
            # Free once enough of them left the window.
            free = within[len(within) - cap.count] + window
            latest = max(latest, free) if latest else free
    return latest


def plan(messages: Iterable[Message], sent: Iterable[Sent], zone: str,
        rules: Rules, now: dt.datetime,
        open_amounts: Mapping[int, Decimal]) -> list[Message]:
    """The messages of one party, in the order decided, each with the time
    it may go out (``send_after``, None for now) and the pending messages it
    replaces.

    ``open_amounts`` gives what is still due on each open line of the party:
    a replaced message's lines still open go with the new one.
    """
    sent = list(sent)
    planned = {s.id: (s.channel, s.at) for s in sent}
    pending = {}
    for message in sent:
        if message.pending:
            pending.setdefault(message.channel, []).append(message)
    result = []
    for index, message in enumerate(messages):
        merged = pending.pop(message.channel, [])
        for other in merged:
            del planned[other.id]
        if merged:
            line_ids = tuple(sorted(set(message.line_ids) | {
                        line_id for other in merged
                        for line_id in other.line_ids
                        if line_id in open_amounts}))
            message = replace(message, line_ids=line_ids,
                amount=sum((open_amounts[l] for l in line_ids), Decimal(0)),
                replaces=tuple(m.id for m in merged))
        if message.channel == LETTER:
            result.append(message)
            continue
        moment, reasons = now, []
        hours = rules.hours_of(message.channel)
        while True:
            allowed = next_allowed(moment, zone, hours, rules.holidays)
            if allowed > moment:
                reasons.append(QUIET_HOURS)
            moment = allowed
            freed = capped_until(
                moment, message.channel, rules.caps, planned.values())
            if freed is None:
                break
            reasons.append(CAPPED)
            moment = freed
        planned[('new', index)] = message.channel, moment
        if moment > now:
            message = replace(message, send_after=moment,
                deferred_for=tuple(dict.fromkeys(reasons)))
        result.append(message)
    return result
