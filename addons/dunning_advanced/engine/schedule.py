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
"""
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter

from .model import (
    BLOCK_ORDERING, FEE, INTEREST, LETTER, LEVEL_ACTIONS, NO_CONTACT_TASK,
    SKIP_COVERED_BY_CREDIT, SKIP_DISPUTED, SKIP_NO_PROCEDURE, SKIP_NOT_REACHED,
    SKIP_PAYMENT_PROCESSING, UNBLOCK_ORDERING, Action, Decisions, LevelChange,
    LevelRule, Message, OpenLine, PartyFacts, Policy, Skip)
from .money import interest

ACTION_ORDER = LEVEL_ACTIONS + (NO_CONTACT_TASK, UNBLOCK_ORDERING)
UNRANKED = float('inf')


def ordered_levels(policy: Policy) -> tuple[LevelRule, ...]:
    return tuple(sorted(
            policy.levels,
            key=lambda level: (level.offset_days, level.sequence, level.id)))


def rank(levels: tuple[LevelRule, ...], level_id: int | None) -> int:
    "Position of level_id in levels; -1, before any level, when not there."
    return next(
        (index for index, level in enumerate(levels) if level.id == level_id),
        -1)


def target_rank(
        levels: tuple[LevelRule, ...], maturity_date: dt.date,
        date: dt.date) -> int:
    "Position of the last level a line due on maturity_date reached on date."
    days_late = (date - maturity_date).days
    return sum(1 for level in levels if days_late >= level.offset_days) - 1


def next_level(
        policy: Policy, level_id: int | None, maturity_date: dt.date
        ) -> tuple[LevelRule | None, dt.date | None]:
    """The level after level_id and the day a line due on maturity_date
    reaches it; (None, None) after the last level.

    A line without a level, or whose level left the policy, is before the
    first level.
    """
    levels = ordered_levels(policy)
    following = rank(levels, level_id) + 1
    if following == len(levels):
        return None, None
    level = levels[following]
    return level, maturity_date + dt.timedelta(days=level.offset_days)


@dataclass(frozen=True)
class Group:
    "The lines of one party that move to the same level today."
    party: PartyFacts
    policy: Policy
    levels: tuple[LevelRule, ...]
    rank: int
    lines: tuple[OpenLine, ...]

    @property
    def level(self) -> LevelRule:
        return self.levels[self.rank]

    @property
    def line_ids(self) -> tuple[int, ...]:
        return tuple(line.id for line in self.lines)

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def reachable_channels(self) -> tuple[str, ...]:
        # A channel listed twice would send twice under one idempotency key.
        return tuple(
            channel for channel in dict.fromkeys(self.level.channels)
            if channel == LETTER or channel in self.party.reachable)

    @property
    def unreachable(self) -> bool:
        return bool(self.level.channels) and not self.reachable_channels

    @property
    def channels(self) -> tuple[str, ...]:
        "The channels to send on: never none when the level has some."
        return (LETTER,) if self.unreachable else self.reachable_channels


def decide(
        parties: Iterable[PartyFacts], policies: Mapping[int, Policy],
        date: dt.date) -> Decisions:
    "What the dunning run of date changes, sends and does, party by party."
    levels = {
        procedure_id: ordered_levels(policy)
        for procedure_id, policy in policies.items()}
    changes, messages, actions, skipped = [], [], [], []
    for party in sorted(parties, key=attrgetter('party_id')):
        moves, party_skipped = move_lines(party, levels, date)
        skipped.extend(party_skipped)
        grouped = defaultdict(list)
        for line, line_rank in moves.values():
            changes.append(LevelChange(
                    line.id, party.party_id,
                    levels[line.procedure_id][line_rank].id, line.level_id))
            grouped[line_rank, line.procedure_id].append(line)
        groups = sorted(
            (Group(party, policies[procedure_id], levels[procedure_id],
                    group_rank, tuple(sorted(lines, key=attrgetter('id'))))
                for (group_rank, procedure_id), lines in grouped.items()),
            key=lambda group: (
                group.rank, group.level.id, group.policy.procedure_id))
        party_actions = []
        blocked = party.ordering_blocked
        for group in groups:
            messages.extend(group_messages(group, date))
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
        party_actions.sort(key=lambda ranked: (
                ranked[0], ranked[1].level_id or 0,
                ACTION_ORDER.index(ranked[1].kind)))
        actions.extend(action for _, action in party_actions)
    return Decisions(
        changes=tuple(sorted(
                changes, key=attrgetter('party_id', 'line_id'))),
        messages=tuple(messages),
        actions=tuple(actions),
        skipped=tuple(sorted(skipped, key=attrgetter('line_id', 'party_id'))))


def move_lines(
        party: PartyFacts, levels: Mapping[int, tuple[LevelRule, ...]],
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
            line_levels = levels[line.procedure_id]
            line_rank = target_rank(line_levels, line.maturity_date, date)
            if line_rank < 0:
                reason = SKIP_NOT_REACHED
            else:
                # Never down: a line already at or past its target stays.
                if rank(line_levels, line.level_id) < line_rank:
                    moves[line.id] = line, line_rank
                continue
        skipped.append(Skip(line.id, party.party_id, reason))
    return moves, skipped


def group_messages(group: Group, date: dt.date) -> list[Message]:
    level = group.level
    following, following_date = next_level(
        group.policy, level.id,
        min(line.maturity_date for line in group.lines))
    return [
        Message(
            party_id=group.party.party_id, level_id=level.id, channel=channel,
            line_ids=group.line_ids, amount=group.amount, date=date,
            key=(f'{group.party.party_id}:{channel}:{level.id}:'
                f'{date.isoformat()}'),
            next_level_id=following.id if following else None,
            next_level_date=following_date)
        for channel in group.channels]


def group_actions(group: Group, date: dt.date, block: bool) -> list[Action]:
    party_id, level = group.party.party_id, group.level
    actions = []
    for kind in level.actions:
        if kind == FEE:
            actions.append(Action(party_id, FEE, level.id, group.line_ids))
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
    if group.unreachable:
        actions.append(Action(
                party_id, NO_CONTACT_TASK, level.id, group.line_ids,
                group.amount))
    return actions


def blocking_level(
        party: PartyFacts, levels: Mapping[int, tuple[LevelRule, ...]],
        moves: Mapping[int, tuple[OpenLine, int]]
        ) -> tuple[int, LevelRule] | None:
    """The highest level blocking ordering where a line of party sits after
    today's changes, with its rank; a disputed line does not block."""
    placed = []
    for line in party.lines:
        line_levels = levels.get(line.procedure_id, ())
        _, line_rank = moves.get(
            line.id, (line, rank(line_levels, line.level_id)))
        if (not line.disputed and line_rank >= 0
                and line_levels[line_rank].block_ordering):
            placed.append((line_rank, line_levels[line_rank]))
    return max(placed, key=lambda ranked: (ranked[0], ranked[1].id),
        default=None)
