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
- party 7 gets one reminder per level and channel, for all its lines there:
  level 1 by e-mail for line 13 (120.00, level 2 on 2026-12-10),
  level 2 by e-mail and by letter for line 12 (250.00, level 3 on 2026-12-14),
  level 3 by letter for line 11 (1000.00, level 4 on 2026-12-24);
- party 7 is charged a fee for line 12 and 6.58 of interest for line 11
  (1000.00 at 8 % for 30 days), and its ordering is blocked;
- party 8 cannot be e-mailed: it gets level 1 by letter and a task to find a
  contact; none of its lines sits at a blocking level, so ordering reopens.

Payment plans: while a plan holds a line (``paused``), the line gets only the
levels before its due date, even those its segment skips, so a courtesy
reminder goes before each instalment and nothing once it is due. A line of a
broken plan goes back to the level its debt had reached (``resume_level_id``)
and sends it again, without a second fee. On the same run of 2026-11-24,
party 9 owes:

    line  due         amount  plan
    30    2026-11-30  300.00  kept       -> level 1 (courtesy), e-mail
    31    2026-11-20  300.00  kept       -> nothing: paused once due
    32    2026-11-20  300.00  broken, was at level 2
                                         -> level 2 by e-mail and letter,
                                            no fee
"""
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from decimal import Decimal
from operator import attrgetter

from .model import (
    BLOCK_ORDERING, FEE, INTEREST, LETTER, LEVEL_ACTIONS, NO_CONTACT_TASK,
    SKIP_COVERED_BY_CREDIT, SKIP_DISPUTED, SKIP_IN_PLAN, SKIP_NO_PROCEDURE,
    SKIP_NOT_REACHED, SKIP_PAYMENT_PROCESSING, UNBLOCK_ORDERING, Action,
    Decisions, LevelChange, NEUTRAL, LevelRule, Message, OpenLine, PartyFacts, Policy, Skip)
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
    "The lines of one party that move to the same level today."
    party: PartyFacts
    policy: Policy
    cadence: Cadence
    rank: int
    lines: tuple[OpenLine, ...]

    @property
    def level(self) -> LevelRule:
        return self.cadence.levels[self.rank]

    @property
    def line_ids(self) -> tuple[int, ...]:
        return tuple(line.id for line in self.lines)

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

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
        grouped = defaultdict(list)
        for line, line_rank in moves.values():
            changes.append(LevelChange(
                    line.id, party.party_id,
                    levels[line.procedure_id].levels[line_rank].id,
                    line.level_id))
            grouped[line_rank, line.procedure_id].append(line)
        groups = sorted(
            (Group(party, policies[procedure_id], levels[procedure_id],
                    group_rank, tuple(sorted(lines, key=attrgetter('id'))))
                for (group_rank, procedure_id), lines in grouped.items()),
            key=lambda group: (
                group.rank, group.level.id, group.policy.procedure_id))
        party_actions, party_messages = [], []
        blocked = party.ordering_blocked
        for group in groups:
            party_messages.extend(group_messages(group, date))
            party_actions.extend(
                (group.rank, action)
                for action in group_actions(group, date, block=not blocked))
            blocked = blocked or group.level.block_ordering
        blocking = blocking_level(party, levels, moves)
        if blocking and not blocked:
            # Nothing reached a blocking level today but a line sits at one,
            # e.g. once its dispute is settled.
            blocking_rank, level = blocking
            party_actions.append((blocking_rank, Action(
                        party.party_id, BLOCK_ORDERING, level.id)))
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


def group_messages(group: Group, date: dt.date) -> list[Message]:
    level = group.level
    following, following_date = group.cadence.following(
        level.id, min(line.maturity_date for line in group.lines))
    return [
        Message(
            party_id=group.party.party_id, level_id=level.id, channel=channel,
            line_ids=group.line_ids, amount=group.amount, date=date,
            key=(f'{group.party.party_id}:{channel}:{level.id}:'
                f'{date.isoformat()}'),
            next_level_id=following.id if following else None,
            next_level_date=following_date, tone=group.cadence.tone)
        for channel in group.channels]


def group_actions(group: Group, date: dt.date, block: bool) -> list[Action]:
    party_id, level = group.party.party_id, group.level
    actions = []
    for kind in level.actions:
        if kind == FEE:
            # A line back from a broken plan paid its fees up to there.
            charged = tuple(line.id for line in group.lines
                if group.cadence.rank(line.resume_level_id) < group.rank)
            if charged:
                actions.append(Action(party_id, FEE, level.id, charged))
        elif kind == INTEREST:
            amounts = tuple(
                (line.id, interest(
                        line.amount, level.interest_rate,
                        max(0, (date - line.maturity_date).days),
                        group.policy.rounding))
                for line in group.lines)
            total = sum((amount for _, amount in amounts), Decimal(0))
            if total:
                actions.append(Action(
                        party_id, INTEREST, level.id, group.line_ids, total,
                        amounts))
        elif kind != BLOCK_ORDERING or block:
            actions.append(Action(
                    party_id, kind, level.id, group.line_ids, group.amount))
    if group.unreachable and not group.opted_out:
        actions.append(Action(
                party_id, NO_CONTACT_TASK, level.id, group.line_ids,
                group.amount))
    return actions


def blocking_level(
        party: PartyFacts, levels: Mapping[int, Cadence],
        moves: Mapping[int, tuple[OpenLine, int]]
        ) -> tuple[int, LevelRule] | None:
    """The highest level blocking ordering where a line of party sits after
    today's changes, with its rank; a disputed line does not block."""
    placed = []
    for line in party.lines:
        line_cadence = levels.get(line.procedure_id)
        if line_cadence is None:
            continue
        _, line_rank = moves.get(
            line.id, (line, line_cadence.rank(line.level_id)))
        if (not line.disputed and line_rank >= 0
                and line_cadence.levels[line_rank].block_ordering):
            placed.append((line_rank, line_cadence.levels[line_rank]))
    return max(placed, key=lambda ranked: (ranked[0], ranked[1].id),
        default=None)
