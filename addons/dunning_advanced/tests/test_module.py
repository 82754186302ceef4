from decimal import Decimal

from trytond.modules.company.tests import CompanyTestMixin
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction

from ..message import MoneyFormat

AMOUNTS = [Decimal(v) for v in (
        '0', '0.01', '0.5', '7', '99.99', '999.99', '1000', '1234.56',
        '100000', '999999.99', '1000000', '123456789.01', '-1234.56')]


class DunningAdvancedTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Dunning Advanced module"
    module = 'dunning_advanced'

    @with_transaction()
    def test_money_format_matches_tryton(self):
        "Reminders show amounts exactly as Tryton formats them"
        pool = Pool()
        Lang = pool.get('ir.lang')
        Currency = pool.get('currency.currency')
        currencies = Currency.create([
                {'name': "Euro", 'code': 'EUR', 'symbol': '€',
                    'rounding': Decimal('0.01')},
                {'name': "Yen", 'code': 'JPY', 'symbol': '¥',
                    'rounding': Decimal('1')},
                {'name': "Swiss Franc", 'code': 'CHF', 'symbol': '',
                    'rounding': Decimal('0.05')},
                ])
        for lang in Lang.search([]):
            for currency in currencies:
                fast = MoneyFormat(lang, currency)
                for amount in AMOUNTS:
                    amount = currency.round(amount)
                    with self.subTest(
                            lang=lang.code, currency=currency.code,
                            amount=amount):
                        self.assertEqual(fast(amount), lang.currency(
                                amount, currency, grouping=True))


del ModuleTestCase
