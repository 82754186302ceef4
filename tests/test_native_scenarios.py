"""Tryton's own dunning and credit-limit scenarios, replayed with
dunning_advanced activated beside the module they test: the native
procedures (levels defined by an overdue delay only) keep working."""
import doctest
import os
import pathlib

import pytest

import trytond.tests.tools
from trytond.cache import MemoryCache
from trytond.tests.test_tryton import drop_db
from trytond.modules.account.tests import tools as account_tools
from trytond.modules.account_invoice.tests.tools import (
    set_fiscalyear_invoice_sequences)
from trytond.modules import account_credit_limit, account_dunning, \
    account_dunning_email, account_dunning_fee, account_dunning_letter, \
    sale_credit_limit

MODULES = [account_dunning, account_dunning_email, account_dunning_fee,
    account_dunning_letter, account_credit_limit, sale_credit_limit]
# Each scenario activates its own set of modules, minutes apiece on
# PostgreSQL; whether our module changes their behaviour does not depend on
# the database, and Tryton's own suites run unchanged on both.
pytestmark = pytest.mark.skipif(
    os.environ.get('TRYTOND_DATABASE_URI', '').startswith('postgresql'),
    reason="replayed on SQLite only")

SCENARIOS = sorted(
    path for module in MODULES
    for path in (pathlib.Path(module.__file__).parent / 'tests').glob(
        'scenario_*.rst'))


@pytest.fixture
def with_dunning_advanced(monkeypatch):
    activate_modules = trytond.tests.tools.activate_modules

    def activate_with_ours(modules, *setup):
        if isinstance(modules, str):
            modules = [modules]
        config = activate_modules([*modules, 'dunning_advanced'], *setup)
        # Restored from a copy: drop what the previous test cached.
        MemoryCache._clear_all(config.database_name)
        return config
    monkeypatch.setattr(
        trytond.tests.tools, 'activate_modules', activate_with_ours)

    # Our module brings account_invoice, whose fiscal years need invoice
    # sequences the scenarios of modules without it never set.
    create_fiscalyear = account_tools.create_fiscalyear

    def create_fiscalyear_with_sequences(*args, **kwargs):
        return set_fiscalyear_invoice_sequences(
            create_fiscalyear(*args, **kwargs))
    monkeypatch.setattr(account_tools, 'create_fiscalyear',
        create_fiscalyear_with_sequences)
    yield
    drop_db()


@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda p: p.stem)
def test_native_scenario(scenario, with_dunning_advanced):
    result = doctest.testfile(
        str(scenario), module_relative=False, encoding='utf-8',
        optionflags=(doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
            | doctest.REPORT_ONLY_FIRST_FAILURE))
    assert result.attempted > 0
    assert result.failed == 0, f"{scenario.name} failed with our module"
