from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class DunningPortalTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Dunning Portal module"
    module = 'dunning_portal'


del ModuleTestCase
