"""Checks of what is entered on the dunning models, whatever the way in
(client, RPC, import): day counts within ten years either way and amounts
that are numbers."""
import datetime as dt
import math
from decimal import Decimal

from trytond.i18n import gettext

from .exceptions import DayCountError, NotFiniteError

MAX_DAYS = 3650


def not_finite(value):
    "Whether value is NaN or infinite (JSON-RPC reads Decimal('Infinity'))"
    if isinstance(value, Decimal):
        return not value.is_finite()
    if isinstance(value, float):
        return not math.isfinite(value)
    return False


class EnteredValuesMixin:
    """Refuse, when records are created or written, a day count of
    `_day_fields` beyond MAX_DAYS either way and any numeric value that is
    not finite: checked on the values given, before the database or
    Tryton's digits check (which fails on them with no message) sees them.
    """
    __slots__ = ()
    _day_fields = frozenset()

    @classmethod
    def create(cls, vlist):
        for values in vlist:
            cls.check_entered(values)
        return super().create(vlist)

    @classmethod
    def write(cls, *args):
        actions = iter(args)
        for _, values in zip(actions, actions):
            cls.check_entered(values)
        super().write(*args)

    @classmethod
    def check_entered(cls, values):
        for name, value in values.items():
            field = cls._fields.get(name)
            if field is None or value is None:
                continue
            if name in cls._day_fields:
                days = value.days if isinstance(value, dt.timedelta) else value
                if isinstance(days, (int, float)) and not (
                        -MAX_DAYS <= days <= MAX_DAYS):
                    raise DayCountError(gettext(
                            'dunning_advanced.msg_day_count_limit',
                            **cls.__names__(name), value=days,
                            limit=MAX_DAYS))
            elif field._type in {'numeric', 'float'} and not_finite(value):
                raise NotFiniteError(gettext(
                        'dunning_advanced.msg_value_not_finite',
                        **cls.__names__(name), value=value))
