"""Mobile numbers as SMS recipients: normalised, and marked when no SMS can
reach them."""
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from phonenumbers import PhoneNumberType as Type

from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval

# Valid numbers of these types take SMS (in many countries the numbering
# plan cannot tell a mobile from a fixed line).
SMS_TYPES = {
    Type.MOBILE, Type.FIXED_LINE_OR_MOBILE, Type.PERSONAL_NUMBER, Type.VOIP}
UNPARSABLE, INVALID, NOT_MOBILE = 'unparsable', 'invalid', 'not_mobile'


@lru_cache(maxsize=10000)
def sms_number(value, region=None):
    """Return (number in E.164, None) for a number that can take SMS, else
    (None, why): unparsable, invalid or not_mobile.

    >>> sms_number('06 12 34 56 78', 'FR')
    ('+33612345678', None)
    >>> sms_number('+33 1 23 45 67 89')
    (None, 'not_mobile')
    >>> sms_number('12', 'FR')
    (None, 'invalid')
    >>> sms_number('call me', 'FR')
    (None, 'unparsable')
    """
    try:
        number = phonenumbers.parse(value, region)
    except NumberParseException:
        return None, UNPARSABLE
    if not phonenumbers.is_valid_number(number):
        return None, INVALID
    if phonenumbers.number_type(number) not in SMS_TYPES:
        return None, NOT_MOBILE
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), None


def sms_number_in(value, regions):
    """sms_number of value in the first region where it is valid, or as an
    international number; the best reason why not otherwise"""
    reasons = []
    for region in list(regions) + [None]:
        number, reason = sms_number(value, region)
        if number:
            return number, None
        reasons.append(reason)
    for reason in (NOT_MOBILE, INVALID, UNPARSABLE):
        if reason in reasons:
            return None, reason


class ContactMechanism(metaclass=PoolMeta):
    __name__ = 'party.contact_mechanism'
    dunning_sms_error = fields.Char("SMS Error", readonly=True,
        states={'invisible': ~Eval('dunning_sms_error')},
        help="Why reminders are not sent by SMS to this number; "
        "cleared when the number is changed.")

    @classmethod
    def copy(cls, mechanisms, default=None):
        default = default.copy() if default else {}
        default.setdefault('dunning_sms_error', None)
        return super().copy(mechanisms, default=default)

    @classmethod
    def write(cls, *args):
        "A changed number is tried again by the next run"
        actions = iter(args)
        args = []
        for mechanisms, values in zip(actions, actions):
            if (values.keys() & {'value', 'type'}
                    and 'dunning_sms_error' not in values):
                values = dict(values, dunning_sms_error=None)
            args.extend((mechanisms, values))
        super().write(*args)

    @classmethod
    def flag_sms_invalid(cls, mechanisms, error, message=None):
        "Stop sending SMS to mechanisms, telling why, audited once"
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        text = gettext('dunning_sms.msg_sms_number_flag', error=error)
        cls.write(mechanisms, {'dunning_sms_error': text})
        Audit.record([Audit.entry('sms_number_invalid', party=m.party,
                    message=message, reason=text) for m in mechanisms])

    @classmethod
    def sms_mechanisms(cls, party, number):
        "The contact mechanisms of party that SMS to number go to"
        regions = tuple(dict.fromkeys(
                a.country.code for a in party.addresses if a.country))
        return [m for m in party.contact_mechanisms
            if m.type in {'mobile', 'phone'} and not m.dunning_sms_error
            and sms_number_in(m.value or '', regions)[0] == number]

    @staticmethod
    def sms_reason(reason):
        return gettext(f'dunning_sms.msg_sms_number_{reason}')
