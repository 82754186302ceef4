#!/usr/bin/env python3
"""Run the dunning demo end to end (what ``make demo`` runs).

1. start from a clean var/ (database, outbox, configuration);
2. create the database and activate dunning_advanced (+ French);
3. load the demo data (demo/demo_data.py);
4. start the SMTP sink (demo/smtp_sink.py) writing to var/outbox;
5. run the daily dunning for today (it grants the early-payment discounts
   earned and learns the segment of each customer), then propose the
   on-time rewards of the last quarter as its scheduled job would;
6. print a summary;
7. serve the database with trytond (and sao, and the customer portal)
   until Ctrl-C.

Running it again is safe: everything is recreated from scratch.
"""
import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VAR = ROOT / 'var'
SAO = VAR / 'sao'
OUTBOX = VAR / 'outbox'
CONF = VAR / 'trytond-demo.conf'
DATABASE = 'demo'
BIN = Path(sys.executable).parent
SMTP_PORT = 8025
URL = 'http://localhost:8000/'
PORTAL_URL = URL + DATABASE + '/portal/'
MODULES = ['dunning_advanced', 'dunning_portal']
DISPUTE_REASON = "Customer disputes the brake discs delivery"
REWARD_CRON = 'account.dunning.reward|propose_last_quarter'
SEGMENTS = ['reliable', 'first_late', 'repeat_late', 'high_risk', 'new']

sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no demo/__pycache__


def step(number, title):
    print("\n[%s] %s" % (number, title), flush=True)
    return time.monotonic()


def done(started):
    print("    done in %.1fs" % (time.monotonic() - started), flush=True)


def write_config():
    CONF.write_text(
        "[database]\n"
        "uri = sqlite://\n"
        "path = %(var)s\n"
        "\n"
        "[web]\n"
        "listen = localhost:8000\n"
        "root = %(sao)s\n"
        "\n"
        "[email]\n"
        "uri = smtp://127.0.0.1:%(port)s\n"
        "from = Pièces Auto Pro <accounts@pieces-auto.example>\n"
        "\n"
        "[queue]\n"
        "worker = False\n" % {
            'var': VAR, 'sao': SAO, 'port': SMTP_PORT},
        encoding='utf-8')


def clean():
    VAR.mkdir(exist_ok=True)
    for name in [DATABASE + '.sqlite', DATABASE + '.sqlite-journal',
            DATABASE + '.sqlite-wal', DATABASE + '.sqlite-shm']:
        (VAR / name).unlink(missing_ok=True)
    if OUTBOX.exists():
        for path in OUTBOX.glob('*.eml'):
            path.unlink()
    OUTBOX.mkdir(exist_ok=True)
    write_config()


def admin(args, log, env):
    "Run trytond-admin, logging to log, exit on failure"
    command = [str(BIN / 'trytond-admin'), '-c', str(CONF), '-d', DATABASE]
    command += args
    with open(log, 'a', encoding='utf-8') as fp:
        fp.write('\n$ %s\n' % ' '.join(command))
        fp.flush()
        result = subprocess.run(
            command, stdout=fp, stderr=subprocess.STDOUT, env=env)
    if result.returncode:
        lines = Path(log).read_text(encoding='utf-8').splitlines()
        print('\n'.join('    | ' + l for l in lines[-25:]))
        print("    ERROR: %s failed (exit %s), full log: %s" % (
                ' '.join(command[:1] + args), result.returncode, log))
        return False
    return True


def create_database(modules):
    log = VAR / 'demo-admin.log'
    log.write_text('', encoding='utf-8')
    passfile = VAR / 'demo-admin.pass'
    passfile.write_text('admin\n', encoding='utf-8')
    env = dict(os.environ, TRYTONPASSFILE=str(passfile))
    env.pop('TRYTOND_DATABASE_URI', None)
    env.pop('TRYTOND_CONFIG', None)
    # trytond needs the file to exist for SQLite
    (VAR / (DATABASE + '.sqlite')).touch()
    ok = admin(['--all', '--email', 'admin@example.com', '-vv'], log, env)
    if ok:
        print("    database initialised", flush=True)
        ok = admin(['-u'] + modules
            + ['--activate-dependencies', '-l', 'fr', '-vv'], log, env)
    passfile.unlink(missing_ok=True)
    if not ok:
        sys.exit(1)
    print("    activated: %s (+ dependencies), French loaded; log: %s" % (
            ', '.join(modules), log.relative_to(ROOT)), flush=True)


def has_model(name):
    from proteus import Model
    IrModel = Model.get('ir.model')
    return bool(IrModel.find([('name', '=', name)]))


def has_field(model, field):
    from proteus import Model
    return field in Model.get(model)._fields


def run_wizard(date, label):
    """Run the daily dunning of dunning_advanced for date.
    Return True if it ran."""
    from proteus import Model, Wizard
    Action = Model.get('ir.action.wizard')
    if not Action.find([('wiz_name', '=', 'account.dunning.run_wizard')]):
        print("    MISSING: wizard 'account.dunning.run_wizard' is not "
            "registered (dunning_advanced not ready?): %s skipped" % label,
            flush=True)
        return False
    wizard = Wizard('account.dunning.run_wizard')
    wizard.form.date = date
    wizard.form.dry_run = False
    wizard.execute('run_')
    print("    %s: run for %s done" % (label, date), flush=True)
    form = getattr(wizard, 'form', None)
    if form is not None and wizard.state != 'end':
        for name in ['summary', 'result', 'report', 'message']:
            value = getattr(form, name, None) if name in getattr(
                form, '_fields', {}) else None
            if value:
                print('    ' + str(value).replace('\n', '\n    '))
    return True


def block_disputed(summary):
    "Block the dunning of the disputed invoice with its reason"
    from proteus import Model
    Invoice = Model.get('account.invoice')
    Dunning = Model.get('account.dunning')
    invoice = Invoice(summary['disputed_invoice'])
    lines = [l.id for l in invoice.lines_to_pay]
    dunnings = Dunning.find([('line', 'in', lines)])
    if not dunnings:
        print("    WARNING: no dunning created for the disputed invoice %s "
            "(due %s): it is not blocked" % (
                invoice.number, summary['disputed_due_date']), flush=True)
        return
    for dunning in dunnings:
        dunning.blocked = True
        if has_field('account.dunning', 'block_reason'):
            dunning.block_reason = DISPUTE_REASON
        else:
            print("    MISSING: field account.dunning.block_reason: "
                "blocked without reason", flush=True)
    Dunning.save(dunnings)
    print("    dunning of %s (%s) blocked: %s" % (
            invoice.number, invoice.party.rec_name, DISPUTE_REASON),
        flush=True)


def propose_rewards():
    """Propose the on-time rewards of the last quarter with the "Run Once"
    button of their scheduled job, as an administrator would try it"""
    from proteus import Model
    Cron = Model.get('ir.cron')
    crons = Cron.find([('method', '=', REWARD_CRON)])
    if not crons:
        print("    MISSING: scheduled job %s: no on-time reward proposed" % (
                REWARD_CRON), flush=True)
        return
    Cron.click(crons, 'run_once')
    Reward = Model.get('account.dunning.reward')
    rewards = Reward.find([])
    print("    on-time rewards proposed (scheduled job run once): %d draft "
        "credit note(s), %s EUR" % (
            len(rewards), sum(r.amount for r in rewards)), flush=True)


def print_segments(summary):
    "The segment count and the customers not in their profile's segment"
    from proteus import Model
    if not has_model('account.dunning.segment'):
        print("    MISSING: model account.dunning.segment: no segments")
        return
    Segment = Model.get('account.dunning.segment')
    rows = Segment.find([])
    counts = Counter(r.segment for r in rows)
    names = SEGMENTS + sorted(set(counts) - set(SEGMENTS))
    print("    segments: %s" % ', '.join(
            '%s %d' % (s, counts[s]) for s in names))
    expected = summary.get('expected_segments', {})
    found = {r.party.id: r for r in rows}
    unexpected = [(party_id, segment) for party_id, segment in sorted(
            expected.items())
        if getattr(found.get(party_id), 'segment', None) != segment]
    if unexpected:
        Party = Model.get('party.party')
        print("    WARNING: %d customer(s) not in the segment of their "
            "payment profile (demo/demo_data.py):" % len(unexpected))
        for party_id, segment in unexpected:
            row = found.get(party_id)
            print("      %s: %s (%s), expected %s" % (
                    Party(party_id).rec_name,
                    row.segment if row else 'no segment',
                    row.reason if row else '-', segment))


def print_incentives():
    "The discount moves the run posted and the rewards proposed"
    from proteus import Model
    Configuration = Model.get('account.configuration')
    if 'early_discount_journal' not in Configuration._fields:
        print("    MISSING: early-payment discount configuration")
        return
    journal = Configuration(1).early_discount_journal
    Move = Model.get('account.move')
    moves = Move.find([('journal', '=', journal.id)]) if journal else []
    granted = sum(
        (l.debit for m in moves for l in m.lines), Decimal(0))
    print("    early-payment discount moves: %d (%s EUR granted, journal "
        "%s)" % (len(moves), granted,
            journal.rec_name if journal else 'not configured'))
    for move in moves:
        print("      %s %s: %s, %s EUR" % (
                move.number, move.date, move.description or '',
                sum(l.credit for l in move.lines)))
    Reward = Model.get('account.dunning.reward')
    rewards = Reward.find([])
    if rewards:
        print("    on-time rewards proposed: %d, %s to %s, %s EUR "
            "(draft credit notes to post)" % (
                len(rewards), rewards[0].start, rewards[0].end,
                sum(r.amount for r in rewards)))
    else:
        print("    on-time rewards proposed: 0")


def print_summary(summary, sink, today):
    from proteus import Model
    Invoice = Model.get('account.invoice')
    Dunning = Model.get('account.dunning')

    invoices = Invoice.find([('type', '=', 'out')])
    counts = Counter()
    for invoice in invoices:
        if invoice.total_amount < 0:
            # the drafts are the on-time rewards proposed
            counts['credit note' if invoice.state != 'draft'
                else 'draft credit note'] += 1
        elif invoice.state == 'paid':
            counts['paid'] += 1
        elif invoice.state == 'posted':
            dates = [l.maturity_date for l in invoice.lines_to_pay
                if not l.reconciliation and l.maturity_date]
            if dates and min(dates) < today:
                counts['overdue'] += 1
            else:
                counts['open, not due'] += 1
        else:
            counts[invoice.state] += 1
    customers = {i.party.id for i in invoices}
    print("    customers: %d" % len(customers))
    print("    customer invoices: %d (%s)" % (len(invoices), ', '.join(
                '%s %d' % (k, counts[k]) for k in [
                    'paid', 'open, not due', 'overdue', 'credit note',
                    'draft credit note']
                if counts[k])))
    dunnings = Dunning.find([])
    by_level = Counter(
        (d.level.rec_name if not has_field('account.dunning.level', 'name')
            else d.level.name or d.level.rec_name) for d in dunnings)
    blocked = sum(1 for d in dunnings if d.blocked)
    print("    dunnings: %d (%d blocked)" % (len(dunnings), blocked))
    for level, count in sorted(by_level.items()):
        print("      %-40s %d" % (level, count))
    if has_model('account.dunning.message'):
        Message = Model.get('account.dunning.message')
        fields = Message._fields
        messages = Message.find([])
        print("    messages (account.dunning.message): %d" % len(messages))
        if 'state' in fields:
            key = ((lambda m: (m.channel, m.state)) if 'channel' in fields
                else (lambda m: ('', m.state)))
            for (channel, state), count in sorted(
                    Counter(map(key, messages)).items()):
                print("      %-40s %d" % (
                        ' '.join(filter(None, [channel, state])), count))
            if any(m.state == 'deferred' for m in messages):
                print("      (deferred: outside the customer's reminder "
                    "hours, 08:00-20:00 on working days in their zone, or "
                    "over a frequency cap; the cron sends them then)")
    else:
        print("    MISSING: model account.dunning.message: "
            "no outbox summary")
    if has_model('account.dunning.task'):
        Task = Model.get('account.dunning.task')
        print("    tasks for the credit controller (account.dunning.task): "
            "%d" % len(Task.find([])))
    print_segments(summary)
    print_incentives()
    emails = sorted(OUTBOX.glob('*.eml'))
    print("    emails received by the SMTP sink: %d, in %s" % (
            len(emails), OUTBOX))
    for path in emails[:5]:
        print("      %s" % path.name)
    if len(emails) > 5:
        print("      ...")
    print("    web client: %s, login admin / admin (database '%s')" % (
            URL, DATABASE))
    for line in portal_login(summary):
        print("    " + line)


def wait_listening(process, host='localhost', port=8000, timeout=120):
    "Wait until the server accepts connections (it loads the database first)"
    import socket
    end = time.monotonic() + timeout
    while time.monotonic() < end and process.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def portal_login(summary):
    "The portal's address and the first demo customer's login, as lines"
    if not summary['portal_users']:
        return []
    name, email, _ = summary['portal_users'][0]
    return [
        "Customer portal: %s" % PORTAL_URL,
        "  log in as %s / %s (%s; the other demo customers in the "
        "summary share the password)" % (
            email, summary['portal_password'], name),
        ]


def check_portal():
    "Fetch the portal's login page from the server: is it served?"
    import urllib.request
    try:
        with urllib.request.urlopen(PORTAL_URL + 'login', timeout=30) as r:
            return "the portal answers %s at %slogin" % (r.status, PORTAL_URL)
    except OSError as exception:
        return "WARNING: the portal does not answer at %slogin: %s" % (
            PORTAL_URL, exception)


def serve(sink, summary):
    if not (SAO / 'index.html').exists():
        print("    WARNING: sao is not installed in %s: the web client will "
            "not be served (run `make sao`); the RPC server still runs" % SAO)
    # -d loads the database at start: trytond 8.0 fails the first login
    # of a database it has to load lazily (KeyError 'res.user')
    command = [str(BIN / 'trytond'), '-c', str(CONF), '-d', DATABASE]
    # Ctrl-C in the terminal reaches both processes; SIGINT is reset in the
    # child in case it was ignored (started in the background)
    process = subprocess.Popen(command, preexec_fn=lambda: signal.signal(
            signal.SIGINT, signal.SIG_DFL))
    print("    starting trytond (pid %s), loading the database..." % (
            process.pid), flush=True)
    try:
        if wait_listening(process):
            print("\n    Open %s and log in with admin / admin (database "
                "'%s')" % (URL, DATABASE))
            for line in portal_login(summary):
                print("    " + line)
            print("    (%s)" % check_portal())
            print("    Emails sent while the server runs land in %s" % OUTBOX)
            print("    Ctrl-C to stop\n", flush=True)
        elif process.poll() is not None:
            print("    ERROR: trytond exited with %s (see above)" % (
                    process.returncode), flush=True)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        sink.stop()
        print("\nStopped trytond and the SMTP sink (%d email(s) received "
            "in all, in %s)." % (sink.count, OUTBOX), flush=True)
    return process.returncode


def port_busy(port):
    import socket
    with socket.socket() as sock:
        return sock.connect_ex(('127.0.0.1', port)) == 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    # Stop cleanly on Ctrl-C and on kill (SIGTERM), even when started in the
    # background where SIGINT is ignored
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--no-serve', action='store_true',
        help="stop after the summary instead of serving")
    parser.add_argument('--modules', nargs='+', default=MODULES,
        help="modules to activate (testing only; default: %(default)s)")
    options = parser.parse_args(argv)

    busy = [port for port in ([SMTP_PORT] if options.no_serve
            else [SMTP_PORT, 8000]) if port_busy(port)]
    if busy:
        sys.exit("Port %s already in use: is another demo running?" % (
                ', '.join(map(str, busy))))

    today = dt.date.today()
    begin = time.monotonic()
    print("Dunning demo for %s, in %s" % (today, VAR), flush=True)

    started = step(1, "Clean start: var/, var/outbox, %s" % CONF.name)
    clean()
    done(started)

    started = step(2, "Create database %r and activate %s" % (
            DATABASE, ', '.join(options.modules)))
    create_database(options.modules)
    done(started)

    started = step(3, "Load demo data")
    import demo_data
    summary = demo_data.load(str(CONF), DATABASE, today)
    print("    %(customers)d customers, %(invoices)d invoices, "
        "%(paid)d paid" % summary)
    for name, email, segment in summary['portal_users']:
        print("    portal user %s (%s): %s" % (email, segment, name))
    done(started)

    started = step(4, "Start the SMTP sink on 127.0.0.1:%s" % SMTP_PORT)
    from smtp_sink import SMTPSink
    sink = SMTPSink(port=SMTP_PORT, outdir=OUTBOX)
    try:
        sink.start()
    except OSError as exception:
        sys.exit("    ERROR: cannot listen on port %s (%s): is another demo "
            "running?" % (SMTP_PORT, exception))
    print("    writing every email to %s" % OUTBOX, flush=True)
    done(started)

    try:
        started = step(5, "Run the daily dunning")
        ran = False
        try:
            # A first run 3 days after the due date of the disputed invoice
            # creates its dunning (its customer is reliable: no reminder
            # before), which is then blocked as disputed
            ran = run_wizard(
                summary['disputed_due_date'] + dt.timedelta(days=3),
                "earlier run (3 days after the due date of the disputed "
                "invoice)")
            block_disputed(summary)
            ran = run_wizard(today, "daily run of today") and ran
            propose_rewards()
        except Exception as exception:
            import traceback
            traceback.print_exc()
            print("    ERROR: the dunning run failed: %s" % exception)
        if not ran:
            print("    The daily dunning did not run: the data is loaded but "
                "no reminder was produced.")
        # give the sink a moment to write the last messages
        time.sleep(1)
        done(started)

        started = step(6, "Summary")
        print_summary(summary, sink, today)
        done(started)
        print("\nDemo ready in %.0fs." % (time.monotonic() - begin))

        if options.no_serve:
            sink.stop()
            return 0
        step(7, "Serve %s" % URL)
        return serve(sink, summary)
    except BaseException:
        sink.stop()
        raise


if __name__ == '__main__':
    sys.exit(main())
