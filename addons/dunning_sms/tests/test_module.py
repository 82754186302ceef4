import doctest
import re

from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import CompanyTestMixin
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from .. import party, segment
from ..policy import SMS_PLACEHOLDERS
from ..segment import GSM7, gsm_friendly, segments

# The longest a customer could reasonably have in each placeholder.
LONG_VALUES = {
    'customer': "Garage et Carrosserie Dupont-Lefebvre & Fils SARL",
    'company': "Pieces Auto Pro Distribution",
    'amount': "1 234 567,89 €",
    'due_date': "01.04.2026",
    'date': "01.04.2026",
    'days_late': "365",
    'portal_link': "https://portal.pieces-auto.example/dunning",
    }


class DunningSmsTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Dunning SMS module"
    module = 'dunning_sms'

    def test_worked_examples(self):
        "The examples of the docstrings hold"
        for module in [segment, party]:
            with self.subTest(module=module.__name__):
                failures, _ = doctest.testmod(module)
                self.assertEqual(failures, 0)

    def test_segments(self):
        "GSM-7 and UCS-2 segments at their limits"
        for text, expected in [
                ("a" * 160, (GSM7, 1)),
                ("a" * 161, (GSM7, 2)),
                ("a" * 306, (GSM7, 2)),
                ("a" * 307, (GSM7, 3)),
                ("€" * 80, (GSM7, 1)),
                ("€" * 81, (GSM7, 2)),
                ("ç" * 70, ('UCS-2', 1)),
                ("ç" * 71, ('UCS-2', 2)),
                ("😀" * 35, ('UCS-2', 1)),
                ("😀" * 36, ('UCS-2', 2)),
                ]:
            with self.subTest(text=text[:3], length=len(text)):
                self.assertEqual(segments(text), expected)

    @with_transaction()
    def test_shipped_texts_fit_two_segments(self):
        "Every shipped SMS fits two GSM-7 segments in English and French"
        pool = Pool()
        Lang = pool.get('ir.lang')
        Template = pool.get('account.dunning.template')
        french, = Lang.search([('code', '=', 'fr')])
        french.translatable = True
        french.save()
        Lang.load_translations([french])
        templates = Template.search([('kind', '=', 'sms')])
        self.assertGreaterEqual(len(templates), 7)
        for code in ['en', 'fr']:
            with Transaction().set_context(language=code):
                for template in Template.browse(templates):
                    body = gsm_friendly(re.sub(r'\$\{(\w+)\}',
                            lambda m: LONG_VALUES[m.group(1)],
                            template.body))
                    with self.subTest(language=code, template=template.name):
                        self.assertIn("STOP", body)
                        self.assertIn(LONG_VALUES['portal_link'], body)
                        for name in SMS_PLACEHOLDERS:
                            self.assertIn(LONG_VALUES[name], body)
                        encoding, count = segments(body)
                        self.assertEqual(encoding, GSM7)
                        self.assertLessEqual(count, 2)

    @with_transaction()
    def test_sms_template_placeholders(self):
        "SMS templates know ${amount} and ${due_date}, email ones do not"
        pool = Pool()
        Template = pool.get('account.dunning.template')
        sms, = Template.create([{
                    'name': "SMS", 'kind': 'sms',
                    'body': "${amount} due on ${due_date}",
                    }])
        self.assertFalse(sms.subject)
        with self.assertRaises(ValidationError):
            Template.create([{
                        'name': "Email", 'subject': "Due",
                        'body': "${amount} due on ${due_date}",
                        }])


del ModuleTestCase
