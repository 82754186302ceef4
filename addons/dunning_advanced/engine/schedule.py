"""Which open line moves to which dunning level today, and what that sends.

Worked example: the run of 2026-11-24 with one procedure (id 1), whose levels
are counted in days from the due date:

    level          days  channels       actions
    1 courtesy       -7  email          -
    2 reminder      +10  email, letter  fee
    3 formal notice +30  letter         interest 8 %, block ordering
    4 last notice   +60  letter         block ordering, collection, call task

Party 7 can be e-mailed, has 100.00 of credit on account (a credit note not
yet matched), can still order, and owes:

    line  due         days late    amount  level now
    10    2026-08-01        115     80.00  -
    11    2026-10-25         30   1000.00  2
    12    2026-11-14         10    250.00  -
    13    2026-11-30         -6    120.00  -
    14    2026-12-15        -21     40.00  -
    15    2026-09-01         84    500.00  -         disputed

Party 8 has no e-mail address, is blocked from ordering since a notice that
is paid now, and owes only line 20: 60.00 due on 2026-11-28 (-4 days).

Decisions:

- the credit settles the oldest lines first: it covers line 10 entirely
  (skipped); the 20.00 left cannot cover line 11, which is dunned in full;
- line 14 reaches no level yet, line 15 is disputed: both are skipped;
- levels: line 11 goes from 2 to 3, line 12 to 2, lines 13 and 20 to 1.
  A line goes straight to the last level it reached, however late it is,
  and never goes down;
- party 7 gets one reminder, of level 3, the highest its lines reached
  today, on the only channel of that level: a letter listing lines 11, 12
  and 13 (1370.00), each with its own days late, announcing
  level 4 on 2026-12-24 (line 11's). The level 1 and level 2 reminders of
  lines 13 and 12 are not sent: the letter tells the customer more;
- party 7 is charged a fee for line 12, which passed level 2 on its way,
  and 6.58 of interest for line 11 (1000.00 at 8 % for 30 days), and its
  ordering is blocked;
- party 8 cannot be e-mailed: it gets level 1 by letter and a task to find a
  contact; none of its lines sits at or past a level that blocks ordering,
  so ordering reopens.

A line seen first long after its due date passes several levels at once
and gets what they leave in place: on the same run, party 6 owes only line
40, 100.00 due on 2026-08-16 (100 days late), and already cannot order. It
goes straight to level 4 and gets its letter alone, but also the fee of
level 2 and the interest of level 3 (2.19), once each; it is handed over to
collections, and a call task is created for level 4. Its ordering stays
blocked, by level 3 and all levels after it.

Payment plans: while a plan holds a line (``paused``), the line gets only the
levels before its due date, even those its segment skips, so a courtesy
reminder goes before each instalment and nothing once it is due. A line of a
broken plan goes back to the level its debt had reached (``resume_level_id``)
and sends it again, without a second fee. On the same run of 2026-11-24,
party 9 owes:

    line  due         amount  plan
    30    2026-11-30  300.00  kept       -> level 1 (courtesy)
    31    2026-11-20  300.00  kept       -> nothing: paused once due
    32    2026-11-20  300.00  broken, was at level 2
                                         -> level 2, no fee

and gets one reminder of level 2, by e-mail and letter, for lines 30 and
32: the instalment due soon is listed with the debt back from the plan.
"""
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from decimal import Decimal
from operator import attrgetter

from .model import (
    BLOCK_ORDERING, CALL_TASK, COLLECTION, FEE, INTEREST, LETTER,
    LEVEL_ACTIONS, NO_CONTACT_TASK, SKIP_COVERED_BY_CREDIT, SKIP_DISPUTED,
    SKIP_IN_PLAN, SKIP_NO_PROCEDURE, SKIP_NOT_REACHED,
    SKIP_PAYMENT_PROCESSING, UNBLOCK_ORDERING, Action, Decisions,
    LevelChange, NEUTRAL, LevelRule, Message, OpenLine, PartyFacts, Policy,
    Skip)
from .compliance import Rules, plan
from .money import interest
from .segment import Thresholds, classify

ACTION_ORDER = LEVEL_ACTIONS + (NO_CONTACT_TASK, UNBLOCK_ORDERING)
UNRANKED = float('inf')


def ordered_levels(policy: Policy) -> tuple[LevelRule, ...]:
    return tuple(sorted(
            policy.levels,
            key=lambda level: (level.offset_days, level.sequence, level.id)))


@dataclass(frozen=True)
class Cadence:
    """The levels of a policy as the customers of one segment go through
    them: every level, in order, with the segment's shift applied, and those
    it skips.

    A shift moves all levels alike, so their order, and the rank of a level,
    is the same for every segment: a line never goes down when its party
    changes segment.
    """
    levels: tuple[LevelRule, ...]
    skipped: frozenset[int] = frozenset()
    tone: str = NEUTRAL
    channels: tuple[str, ...] = ()

    @classmethod
    def of(cls, policy: Policy, segment: str | None = None) -> 'Cadence':
        rule = policy.rule_for(segment)
        levels = ordered_levels(policy)
        if rule.shift_days:
            levels = tuple(
                replace(level, offset_days=level.offset_days + rule.shift_days)
                for level in levels)
        return cls(levels, frozenset(rule.skipped_level_ids), rule.tone,
            tuple(rule.channels))

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {level.id: index for index, level in enumerate(self.levels)}

    @cached_property
    def block_rank(self) -> int | None:
        """Position of the first level blocking ordering, None without one:
        a line there or past it keeps ordering blocked
        (``blocking_level_ids``)."""
        return next((index for index, level in enumerate(self.levels)
                if level.block_ordering), None)

    def rank(self, level_id: int | None) -> int:
        "Position of level_id; -1, before any level, when not there."
        return self._positions.get(level_id, -1)

    def target_rank(self, maturity_date: dt.date, date: dt.date) -> int:
        "Position of the last level a line due on maturity_date reached."
        days_late = (date - maturity_date).days
        return max((index for index, level in enumerate(self.levels)
                if level.id not in self.skipped
                and days_late >= level.offset_days), default=-1)

    def courtesy_rank(self, maturity_date: dt.date, date: dt.date) -> int:
        """Position of the last level before the due date a line due on
        maturity_date reached, skipped or not; -1 once it is due."""
        days_late = (date - maturity_date).days
        return max((index for index, level in enumerate(self.levels)
                if days_late < 0 and days_late >= level.offset_days),
            default=-1)

    def resume_rank(self, level_id: int | None) -> int:
        """Position of the last level the segment gets at or before
        level_id; -1 without one."""
        return max((index for index in range(self.rank(level_id) + 1)
                if self.levels[index].id not in self.skipped), default=-1)

    def following(self, level_id: int | None, maturity_date: dt.date
            ) -> tuple[LevelRule | None, dt.date | None]:
        level = next((level for level in self.levels[self.rank(level_id) + 1:]
                if level.id not in self.skipped), None)
        if level is None:
            return None, None
        return level, maturity_date + dt.timedelta(days=level.offset_days)

    def channels_of(self, level: LevelRule, reachable: frozenset[str]
            ) -> tuple[str, ...]:
        """The channels level goes out on for a party reachable on those
        channels; empty when it can be reached on none of them."""
        # A channel listed twice would send twice under one idempotency key.
        listed = tuple(dict.fromkeys(level.channels))
        usable = tuple(channel for channel in listed
            if channel == LETTER or channel in reachable)
        if not self.channels:
            return usable
        preferred = sorted(
            (channel for channel in usable if channel != LETTER),
            key=lambda channel: (
                self.channels.index(channel) if channel in self.channels
                else len(self.channels) + listed.index(channel)))
        return tuple(preferred[:1]) + (
            (LETTER,) if LETTER in usable else ())


def next_level(
        policy: Policy, level_id: int | None, maturity_date: dt.date,
        segment: str | None = None
        ) -> tuple[LevelRule | None, dt.date | None]:
    """The level after level_id for a party of segment and the day a line
    due on maturity_date reaches it; (None, None) after the last level.

    A line without a level, or whose level left the policy, is before the
    first level.
    """
    return Cadence.of(policy, segment).following(level_id, maturity_date)


@dataclass(frozen=True)
class Group:
    """The lines of one party that move to the same level today, and the
    party's overdue lines its reminder lists."""
    party: PartyFacts
    policy: Policy
    cadence: Cadence
    rank: int
    lines: tuple[OpenLine, ...]
    listed: tuple[OpenLine, ...] = ()

    @property
    def level(self) -> LevelRule:
        return self.cadence.levels[self.rank]

    @property
    def listed_ids(self) -> tuple[int, ...]:
        return tuple(line.id for line in self.listed)

    @property
    def listed_amount(self) -> Decimal:
        return sum((line.amount for line in self.listed), Decimal(0))

    @cached_property
    def reachable_channels(self) -> tuple[str, ...]:
        return self.cadence.channels_of(self.level, self.party.reachable)

    @property
    def unreachable(self) -> bool:
        return bool(self.level.channels) and not self.reachable_channels

    @property
    def opted_out(self) -> bool:
        "Unreachable because the party withdrew a channel of the level"
        return self.unreachable and any(
            channel in self.party.withdrawn for channel in self.level.channels)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels to send on: a letter when the party cannot be
        reached otherwise, unless it opted out and the level is no formal
        notice."""
        if not self.unreachable:
            return self.reachable_channels
        if self.opted_out and not self.level.formal_notice:
            return ()
        return (LETTER,)


def party_policy(party: PartyFacts, policies: Mapping[int, Policy]
        ) -> Policy | None:
    procedure_id = party.procedure_id or next(
        (line.procedure_id for line in party.lines
            if line.procedure_id in policies), None)
    return policies.get(procedure_id)


def decide(
        parties: Iterable[PartyFacts], policies: Mapping[int, Policy],
        date: dt.date, rules: Rules | None = None,
        now: dt.datetime | None = None) -> Decisions:
    """What the dunning run of date changes, sends and does, party by party,
    each party in the segment its history gives.

    A party gets at most one reminder per channel and run: the one of the
    highest level any of its lines reaches that day (``top_group``), listing
    every overdue line of the party, each at its own level. The reminders
    of the lower levels reached the same day are not sent: the customer
    would read the same invoices twice, the later words contradicting the
    earlier ones.

    A line late enough to pass several levels at once (first seen 45 days
    late) goes through them all in one run. What a level leaves in place
    holds for the levels it passed (``passed_levels``): a fee and interest
    are charged once per line, at the highest level passed that charges
    them; the line is handed over to collections if it passed a collection
    level; ordering is blocked while a line sits at or past a level that
    blocks it (``blocking_level_ids``), so before or with the hand-over.
    What a level only says or asks once is done for the level reached
    alone: the messages, their warnings of the next level and the call
    task of a level passed are left out, as the reminder of the level
    reached tells the customer where the account stands now.

    With the company's compliance rules and the moment of the run, each
    message also gets the time it may go out and the pending messages it
    replaces (``compliance.plan``).
    """
    cadences = {}

    def cadence(procedure_id, segment):
        if (procedure_id, segment) not in cadences:
            cadences[procedure_id, segment] = Cadence.of(
                policies[procedure_id], segment)
        return cadences[procedure_id, segment]

    changes, messages, actions, skipped, segments = [], [], [], [], []
    for party in sorted(parties, key=attrgetter('party_id')):
        policy = party_policy(party, policies)
        classification = classify(party.history, date,
            policy.thresholds if policy else Thresholds(), party.pin)
        segments.append((party.party_id, classification))
        levels = {procedure_id: cadence(procedure_id, classification.segment)
            for procedure_id in {line.procedure_id for line in party.lines}
            if procedure_id in policies}
        moves, party_skipped = move_lines(party, levels, date)
        skipped.extend(party_skipped)
        for line, line_rank in moves.values():
            changes.append(LevelChange(
                    line.id, party.party_id,
                    levels[line.procedure_id].levels[line_rank].id,
                    line.level_id))
        left_alone = {skip.line_id for skip in party_skipped}
        listed = tuple(sorted(
                (line for line in party.lines if line.id not in left_alone),
                key=attrgetter('id')))
        party_actions = charges(party, levels, moves, date, policies)
        party_messages = []
        top = top_group(party, policies, levels, moves, listed)
        if top is not None:
            party_messages = group_messages(top, date)
            party_actions.extend(
                (top.rank, action) for action in group_actions(top))
        blocking = blocking_level(party, levels, moves)
        if blocking and not party.ordering_blocked:
            blocking_rank, level, holding = blocking
            held = tuple(line for line in listed if line.id in holding)
            party_actions.append((blocking_rank, Action(
                        party.party_id, BLOCK_ORDERING, level.id,
                        tuple(line.id for line in held),
                        sum((line.amount for line in held), Decimal(0)))))
        elif not blocking and party.ordering_blocked:
            party_actions.append((UNRANKED, Action(
                        party.party_id, UNBLOCK_ORDERING, None)))
        if rules is not None and party_messages:
            party_messages = plan(party_messages, party.sent,
                party.zone or rules.zone, rules, now,
                {line.id: line.amount for line in party.lines})
        messages.extend(party_messages)
        party_actions.sort(key=lambda ranked: (
                ranked[0], ranked[1].level_id or 0,
                ACTION_ORDER.index(ranked[1].kind)))
        actions.extend(action for _, action in party_actions)
    return Decisions(
        changes=tuple(sorted(
                changes, key=attrgetter('party_id', 'line_id'))),
        messages=tuple(messages),
        actions=tuple(actions),
        skipped=tuple(sorted(skipped, key=attrgetter('line_id', 'party_id'))),
        segments=tuple(segments))


def move_lines(
        party: PartyFacts, levels: Mapping[int, Cadence],
        date: dt.date) -> tuple[dict[int, tuple[OpenLine, int]], list[Skip]]:
    """The lines of party that move up, by id, with the rank they move to,
    and the lines left alone for a reason."""
    moves, skipped = {}, []
    credit = party.credit
    for line in sorted(party.lines, key=attrgetter('maturity_date', 'id')):
        if line.procedure_id not in levels:
            reason = SKIP_NO_PROCEDURE
        elif line.disputed:
            reason = SKIP_DISPUTED
        elif line.payment_processing:
            reason = SKIP_PAYMENT_PROCESSING
        elif line.amount <= credit:
            credit -= line.amount
            reason = SKIP_COVERED_BY_CREDIT
        else:
            # What is left of the credit only lowers this line's balance.
            credit = Decimal(0)
            line_cadence = levels[line.procedure_id]
            if line.paused:
                line_rank = line_cadence.courtesy_rank(
                    line.maturity_date, date)
            else:
                line_rank = max(
                    line_cadence.target_rank(line.maturity_date, date),
                    line_cadence.resume_rank(line.resume_level_id))
            if line_rank < 0:
                reason = SKIP_IN_PLAN if line.paused else SKIP_NOT_REACHED
            else:
                # Never down: a line already at or past its target stays.
                if line_cadence.rank(line.level_id) < line_rank:
                    moves[line.id] = line, line_rank
                continue
        skipped.append(Skip(line.id, party.party_id, reason))
    return moves, skipped


def top_group(
        party: PartyFacts, policies: Mapping[int, Policy],
        levels: Mapping[int, Cadence],
        moves: Mapping[int, tuple[OpenLine, int]],
        listed: tuple[OpenLine, ...]) -> Group | None:
    """The lines of party that reach the highest level today, the one its
    reminder is of; None when no line moves.

    Levels of different procedures compare by their days from the due
    date, then by their place in their own procedure.
    """
    grouped = defaultdict(list)
    for line, line_rank in moves.values():
        grouped[line.procedure_id, line_rank].append(line)
    if not grouped:
        return None

    def height(procedure_id, line_rank):
        level = levels[procedure_id].levels[line_rank]
        return level.offset_days, line_rank, level.id, procedure_id
    procedure_id, line_rank = max(grouped, key=lambda k: height(*k))
    return Group(party, policies[procedure_id], levels[procedure_id],
        line_rank, tuple(sorted(
                grouped[procedure_id, line_rank], key=attrgetter('id'))),
        listed)


def passed_levels(cadence: Cadence, line: OpenLine, line_rank: int
        ) -> list[tuple[int, LevelRule]]:
    """The levels line passes today on its way to line_rank, with their
    rank: the one it reaches and those it jumps, but neither those its
    segment skips nor those it passed before, or before its plan broke."""
    start = max(cadence.rank(line.level_id),
        cadence.rank(line.resume_level_id))
    return [(index, cadence.levels[index])
        for index in range(start + 1, line_rank + 1)
        if index == line_rank
        or cadence.levels[index].id not in cadence.skipped]


def charges(
        party: PartyFacts, levels: Mapping[int, Cadence],
        moves: Mapping[int, tuple[OpenLine, int]], date: dt.date,
        policies: Mapping[int, Policy]) -> list[tuple[int, Action]]:
    """The fees, interest and hand-overs the moves of party bring, with the
    rank of their level: each once per line, at the highest level it passed
    today that has it."""
    charged = defaultdict(list)
    for line, line_rank in sorted(moves.values(),
            key=lambda move: move[0].id):
        line_cadence = levels[line.procedure_id]
        passed = passed_levels(line_cadence, line, line_rank)
        for kind, has in (
                (FEE, attrgetter('fee')),
                (INTEREST, lambda level: level.interest_rate is not None),
                (COLLECTION, attrgetter('collection'))):
            highest = max((index for index, level in passed if has(level)),
                default=None)
            if highest is not None:
                charged[kind, line.procedure_id, highest].append(line)
    actions = []
    for (kind, procedure_id, index), lines in charged.items():
        level = levels[procedure_id].levels[index]
        line_ids = tuple(line.id for line in lines)
        if kind == FEE:
            action = Action(party.party_id, FEE, level.id, line_ids)
        elif kind == INTEREST:
            amounts = tuple(
                (line.id, interest(
                        line.amount, level.interest_rate,
                        max(0, (date - line.maturity_date).days),
                        policies[procedure_id].rounding))
                for line in lines)
            total = sum((amount for _, amount in amounts), Decimal(0))
            if not total:
                continue
            action = Action(party.party_id, INTEREST, level.id, line_ids,
                total, amounts)
        else:
            action = Action(party.party_id, kind, level.id, line_ids,
                sum((line.amount for line in lines), Decimal(0)))
        actions.append((index, action))
    return actions


def group_messages(group: Group, date: dt.date) -> list[Message]:
    """The reminder of the party on each channel of group's level, listing
    every overdue line of the party; the next level is the one group's
    lines reach next."""
    level = group.level
    following, following_date = group.cadence.following(
        level.id, min(line.maturity_date for line in group.lines))
    return [
        Message(
            party_id=group.party.party_id, level_id=level.id, channel=channel,
            line_ids=group.listed_ids, amount=group.listed_amount, date=date,
            key=(f'{group.party.party_id}:{channel}:{level.id}:'
                f'{date.isoformat()}'),
            next_level_id=following.id if following else None,
            next_level_date=following_date, tone=group.cadence.tone)
        for channel in group.channels]


def group_actions(group: Group) -> list[Action]:
    "The tasks that go with the party's reminder of group's level"
    party_id, level = group.party.party_id, group.level
    actions = []
    if level.call_task:
        actions.append(Action(party_id, CALL_TASK, level.id,
                group.listed_ids, group.listed_amount))
    if group.unreachable and not group.opted_out:
        actions.append(Action(
                party_id, NO_CONTACT_TASK, level.id, group.listed_ids,
                group.listed_amount))
    return actions


def blocking_level_ids(policy: Policy) -> frozenset[int]:
    """The levels of policy at which a line keeps its party's ordering
    blocked: the first one that blocks ordering and all after it, whatever
    they do themselves (a party handed over to collections cannot order)
    and whichever a segment skips (their order is the same for all)."""
    levels = ordered_levels(policy)
    first = next((index for index, level in enumerate(levels)
            if level.block_ordering), len(levels))
    return frozenset(level.id for level in levels[first:])


def blocking_level(
        party: PartyFacts, levels: Mapping[int, Cadence],
        moves: Mapping[int, tuple[OpenLine, int]]
        ) -> tuple[int, LevelRule, frozenset[int]] | None:
    """The level whose block holds for party after today's changes, with
    its rank and the lines holding it, those at or past it; a disputed line
    does not block."""
    holding, highest = set(), None
    for line in party.lines:
        line_cadence = levels.get(line.procedure_id)
        if line_cadence is None or line.disputed:
            continue
        _, line_rank = moves.get(
            line.id, (line, line_cadence.rank(line.level_id)))
        first = line_cadence.block_rank
        if first is None or line_rank < first:
            continue
        holding.add(line.id)
        place = (line_rank, line_cadence.levels[line_rank].id)
        if highest is None or place > highest[0]:
            highest = place, first, line_cadence.levels[first]
    if highest is None:
        return None
    _, first, level = highest
    return first, level, frozenset(holding)
