from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class DunningAdvancedTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Dunning Advanced module"
    module = 'dunning_advanced'


del ModuleTestCase
