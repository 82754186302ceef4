"""A real dunning run acts on the customers at once: dated after today (in
the company's time zone) it is refused, whoever starts it (wizard, cron,
a call to the server), and nothing is written or sent; a dry run may look
ahead."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from proteus import Model

from conftest import YEAR, make_customer, make_invoice, run_dunning

# UTC+14: from 10:00 UTC on, its today is the day after the UTC one.
ZONE = 'Pacific/Kiritimati'


def company_today():
    return dt.datetime.now(ZoneInfo(ZONE)).date()


def ensure_fiscal_year(date):
    "The period of date exists: only the date itself may refuse the run"
    from trytond.modules.account.tests.tools import create_fiscalyear
    from trytond.modules.account_invoice.tests.tools import (
        set_fiscalyear_invoice_sequences)
    FiscalYear = Model.get('account.fiscalyear')
    if not FiscalYear.find([
                ('start_date', '<=', date), ('end_date', '>=', date)]):
        fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(
                today=(dt.date(date.year, 1, 1), dt.date(date.year, 12, 31))))
        fiscalyear.click('create_period')


def written():
    "What the runs wrote: runs, dunnings, messages, collections, audit"
    return {name: len(Model.get(name).find([])) for name in [
            'account.dunning.run', 'account.dunning',
            'account.dunning.message', 'account.dunning.collection',
            'account.dunning.audit']}


def shown(date):
    "date as the English user reads it in the messages"
    Lang = Model.get('ir.lang')
    english, = Lang.find([('code', '=', 'en')])
    return date.strftime(english.date)


@pytest.fixture
def overdue(tryton):
    "A customer owing an invoice due on 1 April, in a company at UTC+14"
    Company = Model.get('company.company')
    company, = Company.find([])
    company.timezone = ZONE
    company.save()
    party = make_customer("Fleet Services Ltd", 'ap@fleet.example')
    make_invoice(tryton, party, '2600.00', dt.date(YEAR, 3, 2))
    return {'party': party, 'company': company}


def test_real_run_ahead_is_refused(tryton, overdue, mailbox):
    today = company_today()
    ahead = today + dt.timedelta(days=396)  # 13 months
    ensure_fiscal_year(ahead)
    before = written()

    for date in [ahead, today + dt.timedelta(days=1)]:
        with pytest.raises(Exception) as refused:
            run_dunning(date)
        message = str(refused.value)
        assert "A real dunning run cannot be dated" in message, message
        assert shown(date) in message and shown(today) in message, message
        assert "Only a dry run may look ahead" in message
    assert written() == before, "nothing written"
    assert mailbox.messages == [], "nobody mailed"

    summary = run_dunning(ahead, dry_run=True)
    assert "Fleet Services Ltd" in summary
    assert "over to collections" in summary, "the dry run looks ahead"
    assert written() == before

    run_dunning(today)
    run, = Model.get('account.dunning.run').find([])
    assert run.date == today, "the company's today runs, in its time zone"


def test_cron_and_server_calls_are_refused_too(tryton, overdue, mailbox):
    from trytond.exceptions import UserError
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    config = tryton['config']
    tomorrow = company_today() + dt.timedelta(days=1)
    ensure_fiscal_year(tomorrow)
    before = written()
    pool = Pool(config.database_name)
    Run = pool.get('account.dunning.run')
    with Transaction().start(config.database_name, config.user,
            context={'company': overdue['company'].id}) as transaction:
        with pytest.raises(UserError, match="cannot be dated"):
            Run.execute(tomorrow)
        with pytest.raises(UserError, match="cannot be dated"):
            Run.create([{'company': overdue['company'].id,
                        'date': tomorrow, 'state': 'done'}])
        transaction.rollback()
    assert written() == before
    assert mailbox.messages == []
