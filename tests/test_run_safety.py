"""A run can be repeated, interrupted or meet a broken mail server and every
customer still gets each reminder exactly once."""
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from proteus import Model

from conftest import YEAR, make_customer, make_invoice, run_dunning

DUE = dt.date(YEAR, 4, 1)
RUN_DATE = DUE + dt.timedelta(days=3)
CUSTOMERS = 12


def overdue_customers(world, count=CUSTOMERS):
    parties = []
    for i in range(count):
        party = make_customer(
            f"Workshop {i:02d}", f'accounts{i:02d}@workshop.example')
        make_invoice(world, party, f'{100 + i}.50', dt.date(YEAR, 3, 2))
        parties.append(party)
    return parties


def keys_received(mailbox):
    return Counter(m['X-Dunning-Key'] for m in mailbox.messages)


def test_smtp_down_then_back(tryton, mailbox):
    Message = Model.get('account.dunning.message')
    overdue_customers(tryton, 3)

    mailbox.down = True
    run_dunning(RUN_DATE)
    queued = Message.find([])
    assert len(queued) == 3
    assert {m.state for m in queued} == {'queued'}
    assert all(m.attempts == 1 for m in queued)
    assert all('451' in m.last_error for m in queued)
    assert all(m.next_attempt for m in queued), "retried later, with back-off"
    assert mailbox.messages == []

    run_dunning(RUN_DATE)
    assert len(Message.find([])) == 3, "the rerun queues nothing new"

    mailbox.down = False
    Message.click(queued, 'retry')
    assert len(mailbox.messages) == 3
    assert set(keys_received(mailbox).values()) == {1}
    assert {m.state for m in Message.find([])} == {'sent'}

    with pytest.raises(Exception):
        Message.click(Message.find([]), 'retry')
    assert len(mailbox.messages) == 3, "a sent message is never sent again"


class KillingMailbox:
    "Kills the sending process while it delivers the n-th message"

    def __init__(self, mailbox, at):
        self.mailbox = mailbox
        self.at = at
        self.pid = None

    async def handle_DATA(self, server, session, envelope):
        if self.pid and len(self.mailbox.messages) + 1 == self.at:
            os.kill(self.pid, signal.SIGKILL)
            self.pid = None
            return '451 4.3.0 Connection lost'
        return await self.mailbox.handle_DATA(server, session, envelope)


@pytest.mark.skipif(
    not os.environ.get('TRYTOND_DATABASE_URI', '').startswith('postgresql'),
    reason="killing a run needs a database shared between processes "
    "(run with DB=postgresql)")
def test_run_killed_then_restarted(tryton, mailbox):
    from aiosmtpd.controller import Controller

    from conftest import free_port
    overdue_customers(tryton)
    Company = Model.get('company.company')
    company, = Company.find([])
    killer = KillingMailbox(mailbox, at=5)
    port = free_port()
    controller = Controller(killer, hostname='127.0.0.1', port=port)
    controller.start()
    Message = Model.get('account.dunning.message')
    env = dict(os.environ, DUNNING_SMTP_URI=f'smtp://127.0.0.1:{port}')
    script = os.path.join(os.path.dirname(__file__), 'run_dunning_process.py')

    def start():
        return subprocess.Popen([sys.executable, script, str(company.id),
                RUN_DATE.isoformat(), '1'], env=env)
    try:
        # Killed while writing the batches: whatever was committed stays.
        process = start()
        deadline = time.monotonic() + 120
        while not Message.find([]) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        written = len(Message.find([]))
        assert 0 < written <= CUSTOMERS

        # Killed while delivering the fifth message.
        process = start()
        killer.pid = process.pid
        process.wait()
        assert process.returncode == -signal.SIGKILL
        assert len(mailbox.messages) == 4

        # The third run finishes the work, exactly once.
        process = start()
        assert process.wait() == 0
    finally:
        controller.stop()

    received = keys_received(mailbox)
    assert len(received) == CUSTOMERS
    assert set(received.values()) == {1}
    messages = Message.find([])
    assert len(messages) == CUSTOMERS
    assert {m.state for m in messages} == {'sent'}

    run_dunning(RUN_DATE)
    assert len(mailbox.messages) == CUSTOMERS
