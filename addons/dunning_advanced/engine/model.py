"""Plain facts in, decisions out.

The Tryton layer turns its records into these frozen dataclasses, calls
:func:`engine.decide` and writes the decisions back; nothing here knows about
Tryton, the clock or a database.
"""
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from .segment import Classification, History, Pin, Thresholds

EMAIL = 'email'
LETTER = 'letter'

FEE = 'fee'
INTEREST = 'interest'
BLOCK_ORDERING = 'block_ordering'
UNBLOCK_ORDERING = 'unblock_ordering'
COLLECTION = 'collection'
CALL_TASK = 'call_task'
NO_CONTACT_TASK = 'no_contact_task'
LEVEL_ACTIONS = (FEE, INTEREST, BLOCK_ORDERING, COLLECTION, CALL_TASK)

SKIP_DISPUTED = 'disputed'
SKIP_PAYMENT_PROCESSING = 'payment_processing'
SKIP_COVERED_BY_CREDIT = 'covered_by_credit'
SKIP_NOT_REACHED = 'not_reached'
SKIP_NO_PROCEDURE = 'no_procedure'
SKIP_IN_PLAN = 'in_plan'

GENTLE = 'gentle'
NEUTRAL = 'neutral'
FIRM = 'firm'
TONES = (GENTLE, NEUTRAL, FIRM)


@dataclass(frozen=True)
class LevelRule:
    """One step of a procedure, placed by signed days from the maturity date.

    ``offset_days`` is negative before the due date (courtesy), 0 on it and
    positive after it. A ``formal_notice`` is one the law lets us send by
    letter to a customer who opted out of every other channel.
    """
    id: int
    offset_days: int
    sequence: int = 0
    channels: tuple[str, ...] = ()
    fee: bool = False
    interest_rate: Decimal | None = None
    block_ordering: bool = False
    collection: bool = False
    call_task: bool = False
    formal_notice: bool = False

    @property
    def actions(self):
        return tuple(
            name for name, on in (
                (FEE, self.fee),
                (INTEREST, self.interest_rate is not None),
                (BLOCK_ORDERING, self.block_ordering),
                (COLLECTION, self.collection),
                (CALL_TASK, self.call_task),
                ) if on)


@dataclass(frozen=True)
class SegmentRule:
    """How the reminders of one segment go through the levels.

    ``shift_days`` moves every level (negative: earlier), ``skipped_level_ids``
    are levels the segment never gets, and ``channels`` is the order of
    preference of the electronic channels: a level then goes out on the first
    of its channels the party can be reached on (plus its letter, if it has
    one) instead of all of them.
    """
    segment: str
    tone: str = NEUTRAL
    shift_days: int = 0
    skipped_level_ids: frozenset[int] = frozenset()
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    procedure_id: int
    levels: tuple[LevelRule, ...]
    rounding: Decimal = Decimal('0.01')
    thresholds: Thresholds = Thresholds()
    segments: tuple[SegmentRule, ...] = ()

    def rule_for(self, segment: str | None) -> SegmentRule:
        return next((rule for rule in self.segments
                if rule.segment == segment), SegmentRule(segment))


@dataclass(frozen=True)
class OpenLine:
    """An unreconciled receivable line still owed by the party.

    ``amount`` is what remains due, in the company currency, positive.
    ``level_id`` is the level its dunning already reached, if any.
    ``paused`` says a payment plan holds the line: it gets the reminders
    before its due date only. ``resume_level_id`` is the level a line back
    from a broken plan returns to.
    """
    id: int
    party_id: int
    procedure_id: int | None
    maturity_date: dt.date
    amount: Decimal
    level_id: int | None = None
    disputed: bool = False
    payment_processing: bool = False
    paused: bool = False
    resume_level_id: int | None = None


@dataclass(frozen=True)
class Sent:
    """A message of the party already in the outbox, at the time it was
    sent or is due to be sent.

    A pending one (not sent yet) is merged into the next message on its
    channel; its lines then go with that message.
    """
    id: int
    channel: str
    at: dt.datetime
    pending: bool = False
    line_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PartyFacts:
    """Everything the engine needs to know about one party.

    ``credit`` is the sum of the party's unreconciled credits (credit notes,
    payments on account), positive. ``reachable`` names the channels for
    which the party has a usable recipient; a letter is always possible.
    ``ordering_blocked`` says whether ordering is blocked today.
    ``history`` is its payment history and ``pin`` the segment an accountant
    set by hand; the policy of ``procedure_id`` (else of its lines) says how
    they give the party's segment. ``withdrawn`` names the channels the
    party asked not to be reached on, ``zone`` its time zone (None: the
    company's) and ``sent`` its recent messages, for the caps.
    """
    party_id: int
    lines: tuple[OpenLine, ...]
    credit: Decimal = Decimal(0)
    reachable: frozenset[str] = frozenset()
    ordering_blocked: bool = False
    procedure_id: int | None = None
    history: History = History()
    pin: Pin | None = None
    withdrawn: frozenset[str] = frozenset()
    zone: str | None = None
    sent: tuple[Sent, ...] = ()


@dataclass(frozen=True)
class LevelChange:
    line_id: int
    party_id: int
    level_id: int
    previous_level_id: int | None


@dataclass(frozen=True)
class Message:
    """One reminder to send: one per party and channel on a run, of the
    highest level the party's lines reached that day.

    ``line_ids`` are every overdue line of the party, whatever its level;
    ``next_level_id`` and ``next_level_date`` tell when the lines of
    ``level_id`` reach the next level. ``key`` is the idempotency key
    (party, channel, level, date) that the database keeps unique.
    """
    party_id: int
    level_id: int
    channel: str
    line_ids: tuple[int, ...]
    amount: Decimal
    date: dt.date
    key: str
    next_level_id: int | None = None
    next_level_date: dt.date | None = None
    tone: str = NEUTRAL
    send_after: dt.datetime | None = None
    replaces: tuple[int, ...] = ()
    deferred_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    party_id: int
    kind: str
    level_id: int | None
    line_ids: tuple[int, ...] = ()
    amount: Decimal | None = None
    amounts: tuple[tuple[int, Decimal], ...] = ()


@dataclass(frozen=True)
class Skip:
    line_id: int
    party_id: int
    reason: str


@dataclass(frozen=True)
class Decisions:
    changes: tuple[LevelChange, ...] = ()
    messages: tuple[Message, ...] = ()
    actions: tuple[Action, ...] = ()
    skipped: tuple[Skip, ...] = field(default=(), compare=False)
    segments: tuple[tuple[int, Classification], ...] = field(
        default=(), compare=False)
