"""The dunning rules engine: plain facts in, decisions out."""
from .model import (
    BLOCK_ORDERING, CALL_TASK, COLLECTION, EMAIL, FEE, INTEREST, LETTER,
    LEVEL_ACTIONS, NO_CONTACT_TASK, SKIP_COVERED_BY_CREDIT, SKIP_DISPUTED,
    SKIP_NO_PROCEDURE, SKIP_NOT_REACHED, SKIP_PAYMENT_PROCESSING,
    UNBLOCK_ORDERING, Action, Decisions, LevelChange, LevelRule, Message,
    OpenLine, PartyFacts, Policy, Skip)
from .money import interest, round_money
from .schedule import decide, next_level

__all__ = [
    'BLOCK_ORDERING', 'CALL_TASK', 'COLLECTION', 'EMAIL', 'FEE', 'INTEREST',
    'LETTER', 'LEVEL_ACTIONS', 'NO_CONTACT_TASK', 'SKIP_COVERED_BY_CREDIT',
    'SKIP_DISPUTED', 'SKIP_NO_PROCEDURE', 'SKIP_NOT_REACHED',
    'SKIP_PAYMENT_PROCESSING', 'UNBLOCK_ORDERING', 'Action', 'Decisions',
    'LevelChange', 'LevelRule', 'Message', 'OpenLine', 'PartyFacts', 'Policy',
    'Skip', 'decide', 'interest', 'next_level', 'round_money']
