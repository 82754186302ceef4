"""The SMS texts of each level, in three tones like the email ones."""
from trytond.i18n import gettext
from trytond.model import fields
from trytond.model.exceptions import ValidationError
from trytond.modules.dunning_advanced.message import PLACEHOLDER, PLACEHOLDERS
from trytond.pool import PoolMeta
from trytond.pyson import Eval, In

# Filled in for SMS only: a short text names the reminded invoices by
# their amount and due date instead of listing them.
SMS_PLACEHOLDERS = ('amount', 'due_date')


class Template(metaclass=PoolMeta):
    __name__ = 'account.dunning.template'
    kind = fields.Selection([
            ('email', "Email and Letter"),
            ('sms', "SMS"),
            ], "Kind", required=True,
        help="SMS texts have no subject and should fit two SMS.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.subject.required = False
        cls.subject.states = {
            'required': Eval('kind') == 'email',
            'invisible': Eval('kind') == 'sms',
            }
        cls.body.help += "\nSMS also: " + ", ".join(
            '${%s}' % p for p in SMS_PLACEHOLDERS)

    @classmethod
    def default_kind(cls):
        return 'email'

    @classmethod
    def validate_fields(cls, templates, field_names):
        super().validate_fields(templates, field_names)
        if 'kind' in field_names:
            for template in templates:
                template.check_placeholders()

    def check_placeholders(self):
        if self.kind != 'sms':
            return super().check_placeholders()
        known = PLACEHOLDERS + SMS_PLACEHOLDERS
        for name in PLACEHOLDER.findall(self.body or ''):
            if name not in known:
                raise ValidationError(gettext(
                        'dunning_advanced.msg_template_unknown_placeholder',
                        template=self.name, placeholder=name,
                        placeholders=', '.join(known)))


def _sms_template(string, help):
    return fields.Many2One(
        'account.dunning.template', string,
        domain=[('kind', '=', 'sms')], help=help)


class Level(metaclass=PoolMeta):
    __name__ = 'account.dunning.level'
    sms_template = _sms_template("SMS Template",
        "The text of the SMS, in the neutral tone.")
    sms_template_gentle = _sms_template("Gentle SMS Template",
        "The SMS for the segments in the gentle tone; "
        "empty to use the neutral one.")
    sms_template_firm = _sms_template("Firm SMS Template",
        "The SMS for the segments in the firm tone; "
        "empty to use the neutral one.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.sms_template.states = {
            'required': In('sms', Eval('channels', [])),
            }
        cls.template.domain = [('kind', '=', 'email')]
        cls.template_gentle.domain = [('kind', '=', 'email')]
        cls.template_firm.domain = [('kind', '=', 'email')]

    def sms_template_for(self, tone):
        "The SMS template of tone, else the neutral one"
        return getattr(self, f'sms_template_{tone}', None) or self.sms_template
