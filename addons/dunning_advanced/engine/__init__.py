"""The dunning rules engine: plain facts in, decisions out."""
from .compliance import (
    CAPPED, DEFAULT_CAPS, QUIET_HOURS, Cap, QuietHours, Rules, next_allowed,
    plan)
from .model import (
    BLOCK_ORDERING, CALL_TASK, COLLECTION, EMAIL, FEE, FIRM, GENTLE, INTEREST,
    LETTER, LEVEL_ACTIONS, NEUTRAL, NO_CONTACT_TASK, SKIP_COVERED_BY_CREDIT,
    SKIP_DISPUTED, SKIP_IN_PLAN, SKIP_NO_PROCEDURE, SKIP_NOT_REACHED,
    SKIP_PAYMENT_PROCESSING, TONES, UNBLOCK_ORDERING, Action, Decisions,
    LevelChange, LevelRule, Message, OpenLine, PartyFacts, Policy, SegmentRule,
    Sent, Skip)
from .money import interest, round_money
from .schedule import Cadence, blocking_level_ids, decide, next_level
from .segment import (
    FIRST_LATE, HIGH_RISK, NEW, RELIABLE, REPEAT_LATE, RISK_ORDER, SEGMENTS,
    Classification, Figures, History, OverdueItem, PaidItem, Pin, Thresholds,
    classify)

__all__ = [
    'BLOCK_ORDERING', 'CALL_TASK', 'COLLECTION', 'EMAIL', 'FEE', 'FIRM',
    'GENTLE', 'INTEREST', 'LETTER', 'LEVEL_ACTIONS', 'NEUTRAL',
    'NO_CONTACT_TASK', 'SKIP_COVERED_BY_CREDIT', 'SKIP_DISPUTED',
    'SKIP_IN_PLAN', 'SKIP_NO_PROCEDURE', 'SKIP_NOT_REACHED',
    'SKIP_PAYMENT_PROCESSING',
    'TONES', 'UNBLOCK_ORDERING', 'Action', 'Decisions', 'LevelChange',
    'LevelRule', 'Message', 'OpenLine', 'PartyFacts', 'Policy', 'SegmentRule',
    'Skip', 'Cadence', 'decide', 'interest', 'next_level', 'round_money',
    'FIRST_LATE', 'HIGH_RISK', 'NEW', 'RELIABLE', 'REPEAT_LATE', 'RISK_ORDER',
    'SEGMENTS', 'Classification', 'Figures', 'History', 'OverdueItem',
    'PaidItem', 'Pin', 'Thresholds', 'classify', 'CAPPED', 'DEFAULT_CAPS',
    'QUIET_HOURS', 'Cap', 'QuietHours', 'Rules', 'Sent', 'next_allowed',
    'plan', 'blocking_level_ids']
