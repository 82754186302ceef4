"""When reminders may reach customers: quiet hours, caps, time zones."""
import datetime as dt
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.model.exceptions import ValidationError
from trytond.modules.company.company import TIMEZONES
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from . import engine

WEEKDAYS = ('monday', 'tuesday', 'wednesday', 'thursday', 'friday',
    'saturday', 'sunday')


@lru_cache(maxsize=None)
def country_zones():
    "{country code: its main time zone}, from the IANA zone table"
    zones = {}
    table = resources.files('tzdata.zoneinfo').joinpath('zone.tab')
    for row in table.read_text().splitlines():
        if row and not row.startswith('#'):
            code, _, zone = row.split('\t')[:3]
            zones.setdefault(code, zone)
    return zones


class QuietHours(ModelSQL, ModelView):
    "Dunning Quiet Hours"
    __name__ = 'account.dunning.quiet_hours'
    company = fields.Many2One('company.company', "Company", required=True)
    channel = fields.Selection('get_channels', "Channel",
        help="Empty for every channel without hours of its own.")
    start = fields.Time("From", required=True,
        help="In the customer's time zone.")
    end = fields.Time("To", required=True,
        help="In the customer's time zone.")
    monday = fields.Boolean("Monday")
    tuesday = fields.Boolean("Tuesday")
    wednesday = fields.Boolean("Wednesday")
    thursday = fields.Boolean("Thursday")
    friday = fields.Boolean("Friday")
    saturday = fields.Boolean("Saturday")
    sunday = fields.Boolean("Sunday")
    holidays = fields.Boolean("Not on Public Holidays",
        help="No message on the public holidays of the company's country.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints = [
            ('company_channel_unique', Unique(t, t.company, t.channel),
                'dunning_advanced.msg_quiet_hours_unique'),
            ]

    @classmethod
    def get_channels(cls):
        pool = Pool()
        Message = pool.get('account.dunning.message')
        return [(None, "")] + [(c, n) for c, n in Message.get_channels()
            if c != engine.LETTER]

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_start(cls):
        return engine.QuietHours().start

    @classmethod
    def default_end(cls):
        return engine.QuietHours().end

    @classmethod
    def default_holidays(cls):
        return True

    @classmethod
    def default_monday(cls):
        return True

    default_tuesday = default_wednesday = default_thursday = default_monday
    default_friday = default_monday

    @classmethod
    def default_saturday(cls):
        return False

    default_sunday = default_saturday

    def to_rule(self):
        return engine.QuietHours(
            start=self.start, end=self.end,
            days=frozenset(i for i, day in enumerate(WEEKDAYS)
                if getattr(self, day)),
            holidays=bool(self.holidays))

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        for record in records:
            for error in record.to_rule().errors():
                raise ValidationError(gettext(
                        f'dunning_advanced.msg_quiet_hours_{error}',
                        channel=record.channel or '*'))


class Configuration(metaclass=PoolMeta):
    __name__ = 'account.configuration'
    dunning_cap_count = fields.Integer("Reminders at Most",
        help="Reminders of any kind but letters a customer gets in the "
        "period below; more are deferred or merged into the next one.")
    dunning_cap_days = fields.Integer("In Days")
    dunning_sms_cap_count = fields.Integer("SMS at Most")
    dunning_sms_cap_days = fields.Integer("SMS in Days")

    @classmethod
    def default_dunning_cap_count(cls):
        return engine.DEFAULT_CAPS[1].count

    @classmethod
    def default_dunning_cap_days(cls):
        return engine.DEFAULT_CAPS[1].days

    @classmethod
    def default_dunning_sms_cap_count(cls):
        return engine.DEFAULT_CAPS[0].count

    @classmethod
    def default_dunning_sms_cap_days(cls):
        return engine.DEFAULT_CAPS[0].days

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        names = {'dunning_cap_count', 'dunning_cap_days',
            'dunning_sms_cap_count', 'dunning_sms_cap_days'}
        for record in records:
            for name in names & field_names:
                value = getattr(record, name)
                if value is not None and value < 1:
                    raise ValidationError(gettext(
                            'dunning_advanced.msg_cap_not_positive',
                            field=cls.__names__(name)['field']))

    def dunning_caps(self):
        caps = []
        if self.dunning_sms_cap_count and self.dunning_sms_cap_days:
            caps.append(engine.Cap(self.dunning_sms_cap_count,
                    self.dunning_sms_cap_days, 'sms'))
        if self.dunning_cap_count and self.dunning_cap_days:
            caps.append(engine.Cap(self.dunning_cap_count,
                    self.dunning_cap_days))
        return tuple(caps)


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'
    dunning_timezone = fields.Selection([(None, "")] + TIMEZONES,
        "Time Zone", translate=False,
        help="Where the customer reads reminders; empty for the zone of "
        "the country of its address, else the company's.")


class Run(metaclass=PoolMeta):
    __name__ = 'account.dunning.run'

    @classmethod
    def compliance_rules(cls, company, date):
        "The company's quiet hours, caps and public holidays as of date"
        pool = Pool()
        QuietHours = pool.get('account.dunning.quiet_hours')
        Configuration = pool.get('account.configuration')
        hours = QuietHours.search([('company', '=', company.id)])
        default = next((h.to_rule() for h in hours if not h.channel),
            engine.QuietHours())
        address = company.party.address_get()
        country = address.country.code if address and address.country \
            else None
        days = frozenset()
        if country:
            try:
                days = frozenset(holidays_lib.country_holidays(
                        country, years=(date.year, date.year + 1)))
            except NotImplementedError:
                pass
        zone = company.timezone or country_zones().get(country) or 'UTC'
        return engine.Rules(
            hours=tuple((h.channel, h.to_rule()) for h in hours if h.channel),
            default_hours=default,
            caps=Configuration(1).dunning_caps(),
            holidays=days,
            zone=zone)

    @classmethod
    def decision_time(cls, company, date, rules):
        """The moment the run decides at: now for today's run, noon in the
        company's zone for a run of another day (a catch-up or a test), so
        that the same run always decides the same."""
        pool = Pool()
        Date = pool.get('ir.date')
        now = Transaction().context.get('dunning_now')
        if now:
            return now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
        if date == Date.today():
            return dt.datetime.now(dt.timezone.utc)
        return dt.datetime.combine(date, dt.time(12), ZoneInfo(rules.zone)
            ).astimezone(dt.timezone.utc)
