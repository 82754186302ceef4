"""Run the daily dunning in a process of its own, as trytond-cron does,
then send what is due.

Used by the tests that kill a run mid-way; reads its database from the
same environment variables as Tryton's test suite.
"""
import datetime as dt
import os
import sys

from trytond import config

config.set('database', 'uri', os.environ['TRYTOND_DATABASE_URI'])
config.set('email', 'uri', os.environ['DUNNING_SMTP_URI'])
config.set('email', 'from', 'accounts@pieces-auto.example')

from trytond.pool import Pool  # noqa: E402
from trytond.transaction import Transaction  # noqa: E402
from trytond.worker import run_task  # noqa: E402


def main(database, company, date, batch_size):
    pool = Pool(database)
    pool.init()
    with Transaction().start(
            database, 0, context={'company': company}) as transaction:
        Run = pool.get('account.dunning.run')
        Run.execute(date, batch_size=batch_size)
        # As trytond-cron does next: what waited for working hours is due.
        pool.get('account.dunning.message').send_pending()
        transaction.commit()
        tasks = list(transaction.tasks)
        transaction.tasks.clear()
    for task_id in tasks:
        run_task(pool, task_id)


if __name__ == '__main__':
    main(os.environ['DB_NAME'], int(sys.argv[1]),
        dt.date.fromisoformat(sys.argv[2]), int(sys.argv[3]))
