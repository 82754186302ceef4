"""Twilio credentials and sender of each company."""
from trytond import config as trytond_config
from trytond.model import ModelSQL, fields
from trytond.modules.company.model import CompanyValueMixin
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

DEFAULT_API_URL = 'https://api.twilio.com'
# The names contain "token" or "secret" so that Tryton leaves their values
# out of the logs of the calls that write them.
SMS_FIELDS = {
    'sms_account_sid', 'sms_auth_token', 'sms_api_key_sid',
    'sms_api_key_secret', 'sms_from_number', 'sms_messaging_service_sid',
    }


def _account_sid():
    return fields.Char("Twilio Account SID",
        help="The account (AC...) that sends the reminders.")


def _auth_token():
    return fields.Char("Twilio Auth Token",
        help="Checks that the delivery reports and replies come from "
        "Twilio; also sends the reminders when no API key is set.")


def _api_key_sid():
    return fields.Char("Twilio API Key SID",
        help="An API key (SK...) to send with instead of the auth token.")


def _api_key_secret():
    return fields.Char("Twilio API Key Secret",
        help="The secret of the API key, shown once by Twilio.")


def _from_number():
    return fields.Char("Sender Number",
        help="The Twilio number (+E.164) the reminders come from.")


def _messaging_service_sid():
    return fields.Char("Messaging Service SID",
        help="A messaging service (MG...) that picks the sender; "
        "used instead of the sender number.")


class Configuration(metaclass=PoolMeta):
    __name__ = 'account.configuration'
    sms_account_sid = fields.MultiValue(_account_sid())
    sms_auth_token = fields.MultiValue(_auth_token())
    sms_api_key_sid = fields.MultiValue(_api_key_sid())
    sms_api_key_secret = fields.MultiValue(_api_key_secret())
    sms_from_number = fields.MultiValue(_from_number())
    sms_messaging_service_sid = fields.MultiValue(_messaging_service_sid())

    @classmethod
    def multivalue_model(cls, field):
        pool = Pool()
        if field in SMS_FIELDS:
            return pool.get('account.configuration.dunning_sms')
        return super().multivalue_model(field)

    @without_check_access
    def sms_settings(self, company):
        """The credentials and sender of company, None when SMS are not
        set up for it. Read without access rights: only
        administrators may see the secrets, anybody's run sends."""
        values = {name: self.get_multivalue(name, company=company.id)
            for name in SMS_FIELDS}
        api_key = values['sms_api_key_sid'] and values['sms_api_key_secret']
        if not (values['sms_account_sid']
                and (values['sms_auth_token'] or api_key)
                and (values['sms_from_number']
                    or values['sms_messaging_service_sid'])):
            return None
        return values

    @classmethod
    def sms_api_url(cls):
        return trytond_config.get(
            'dunning_sms', 'api_url', default=DEFAULT_API_URL)

    def sms_webhook_url(self, database, name):
        """The public address of the webhook name of database: Twilio
        signs its requests with it, so it is also what they are checked
        against behind a proxy."""
        base = trytond_config.get('dunning_sms', 'callback_url')
        if base:
            base = f"{base.rstrip('/')}/{database}"
        elif self.dunning_portal_url:
            base = self.dunning_portal_url.rstrip('/')
        else:
            return None
        return f'{base}/dunning_sms/{name}'


class ConfigurationSMS(ModelSQL, CompanyValueMixin):
    "Account Configuration SMS"
    __name__ = 'account.configuration.dunning_sms'
    sms_account_sid = _account_sid()
    sms_auth_token = _auth_token()
    sms_api_key_sid = _api_key_sid()
    sms_api_key_secret = _api_key_secret()
    sms_from_number = _from_number()
    sms_messaging_service_sid = _messaging_service_sid()
