#!/usr/bin/env python3
"""Run the dunning demo end to end (what ``make demo`` runs).

1. start from a clean var/ (database, outbox, configuration);
2. create the database and activate dunning_advanced, dunning_sms and
   dunning_portal (+ French);
3. load the demo data (demo/demo_data.py);
4. post and pay the invoices of the last days day by day, running the
   daily dunning of each day as of that day, its reminders recorded as
   sent then (not sent again);
5. start the SMTP sink (demo/smtp_sink.py) writing to var/outbox, the
   local Twilio (demo/sms_sink.py) writing to var/outbox/sms and the local
   Stripe (tests/stripe_server.py) for the portal's card payments;
6. run the daily dunning for today (it grants the early-payment discounts
   earned and learns the segment of each customer), then propose the
   on-time rewards of the last quarter as its scheduled job would;
7. print a summary;
8. serve the database with trytond (and sao, and the customer portal)
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
DATABASE = 'demo'
BIN = Path(sys.executable).parent
PORT, SMTP_PORT, SMS_PORT, STRIPE_PORT = 8000, 8025, 8026, 8027
MODULES = ['dunning_advanced', 'dunning_sms', 'dunning_portal']
REWARD_CRON = 'account.dunning.reward|propose_last_quarter'
SEGMENTS = ['reliable', 'first_late', 'repeat_late', 'high_risk', 'new']

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / 'tests'))  # the local Stripe
sys.dont_write_bytecode = True  # no demo/__pycache__


def use(var=ROOT / 'var', port=PORT, smtp_port=SMTP_PORT, sms_port=SMS_PORT,
        stripe_port=STRIPE_PORT):
    """Where the demo lives and listens; tests/test_demo.py builds one in a
    directory and on ports of its own"""
    global VAR, SAO, OUTBOX, SMS_OUTBOX, CONF, URL, PORTAL_URL
    global PORT, SMTP_PORT, SMS_PORT, STRIPE_PORT
    VAR = Path(var).resolve()
    SAO = ROOT / 'var' / 'sao'
    OUTBOX = VAR / 'outbox'
    SMS_OUTBOX = OUTBOX / 'sms'
    CONF = VAR / 'trytond-demo.conf'
    PORT, SMTP_PORT, SMS_PORT, STRIPE_PORT = (
        port, smtp_port, sms_port, stripe_port)
    URL = 'http://localhost:%s/' % port
    PORTAL_URL = URL + DATABASE + '/portal/'


use()


def stripe_url():
    return 'http://127.0.0.1:%s' % STRIPE_PORT


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
        "listen = localhost:%(web)s\n"
        "root = %(sao)s\n"
        "\n"
        "[email]\n"
        "uri = smtp://127.0.0.1:%(port)s\n"
        "from = Pièces Auto Pro <accounts@pieces-auto.example>\n"
        "\n"
        "[queue]\n"
        "worker = False\n"
        "\n"
        "# The local servers answering as Twilio's and Stripe's APIs\n"
        "[dunning_sms]\n"
        "api_url = http://127.0.0.1:%(sms)s\n"
        "\n"
        "# The demo serves the portal on http://localhost only: its cookies\n"
        "# go without Secure, which every other portal keeps (the default).\n"
        "[dunning_portal]\n"
        "secure_cookie = False\n"
        "stripe_api_base = %(stripe)s\n"
        "stripe_js = %(stripe)s/v3/\n" % {
            'var': VAR, 'sao': SAO, 'port': SMTP_PORT, 'web': PORT,
            'sms': SMS_PORT, 'stripe': stripe_url()},
        encoding='utf-8')


def clean():
    VAR.mkdir(parents=True, exist_ok=True)
    for name in [DATABASE + '.sqlite', DATABASE + '.sqlite-journal',
            DATABASE + '.sqlite-wal', DATABASE + '.sqlite-shm']:
        (VAR / name).unlink(missing_ok=True)
    for path in [*OUTBOX.glob('*.eml'), *SMS_OUTBOX.glob('*.txt')]:
        path.unlink()
    SMS_OUTBOX.mkdir(parents=True, exist_ok=True)
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
            ', '.join(modules), log), flush=True)


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


def print_summary(summary, today):
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
                    "hours or over a frequency cap; the cron sends them "
                    "then)")
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
    sms = sorted(SMS_OUTBOX.glob('*.txt'))
    print("    SMS received by the local Twilio: %d, in %s" % (
            len(sms), SMS_OUTBOX))
    for path in sms[:5]:
        print("      %s" % path.name)
    print("    card payments in the portal: the local Stripe at %s" % (
            stripe_url()))
    print("    web client: %s, login admin / admin (database '%s')" % (
            URL, DATABASE))
    for line in portal_login(summary):
        print("    " + line)


def wait_listening(process, host='localhost', timeout=120):
    "Wait until the server accepts connections (it loads the database first)"
    import socket
    end = time.monotonic() + timeout
    while time.monotonic() < end and process.poll() is None:
        try:
            with socket.create_connection((host, PORT), timeout=1):
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


def serve(servers, summary):
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
            print("    Emails sent while the server runs land in %s, SMS "
                "in %s" % (OUTBOX, SMS_OUTBOX))
            print("    Pay by card in the portal with Stripe's test card "
                "4242 4242 4242 4242 (any future expiry, any CVC); "
                "4000 0000 0000 0002 is declined")
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
        servers.stop()
        print("\nStopped trytond and the local servers (%d email(s) and %d "
            "SMS received in all, in %s)." % (
                servers.smtp.count, len(servers.sms.files), OUTBOX),
            flush=True)
    return process.returncode


class Servers:
    """The local servers the demo talks to: the SMTP sink, the local Twilio
    writing the SMS beside the e-mails, and the local Stripe"""

    def __init__(self):
        from sms_sink import SMSSink
        from smtp_sink import SMTPSink
        from stripe_server import StripeServer

        import demo_data
        self.smtp = SMTPSink(port=SMTP_PORT, outdir=OUTBOX)
        self.sms = SMSSink(demo_data.TWILIO_ACCOUNT_SID,
            demo_data.TWILIO_AUTH_TOKEN, port=SMS_PORT, outdir=SMS_OUTBOX)
        self.stripe = StripeServer(demo_data.STRIPE_SECRET_KEY,
            demo_data.STRIPE_PUBLISHABLE_KEY, demo_data.STRIPE_SIGNING_SECRET)
        self.stripe.port = STRIPE_PORT
        self.started = []

    def start(self, stripe_webhook):
        self.stripe.webhook_url = '%s%s/account_payment_stripe/webhook/%s' % (
            URL, DATABASE, stripe_webhook)
        for server in [self.smtp, self.sms, self.stripe]:
            server.start()
            self.started.append(server)

    def stop(self):
        while self.started:
            self.started.pop().stop()


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
    parser.add_argument('--var', type=Path, default=VAR,
        help="directory of the database, configuration and outbox "
        "(default: %(default)s)")
    parser.add_argument('--port', type=int, default=PORT,
        help="port of trytond (default: %(default)s); the SMTP sink, the "
        "local Twilio and the local Stripe listen on this port + 25, + 26 "
        "and + 27")
    options = parser.parse_args(argv)
    offset = options.port - PORT
    use(options.var, options.port, SMTP_PORT + offset, SMS_PORT + offset,
        STRIPE_PORT + offset)

    ports = [SMTP_PORT, SMS_PORT, STRIPE_PORT] + (
        [] if options.no_serve else [PORT])
    busy = [port for port in ports if port_busy(port)]
    if busy:
        sys.exit("Port %s already in use: is another demo running?" % (
                ', '.join(map(str, busy))))

    today = dt.date.today()
    begin = time.monotonic()
    print("Dunning demo for %s, in %s" % (today, VAR), flush=True)

    started = step(1, "Clean start: %s, %s, %s" % (VAR, OUTBOX, CONF.name))
    clean()
    done(started)

    started = step(2, "Create database %r and activate %s" % (
            DATABASE, ', '.join(MODULES)))
    create_database(MODULES)
    done(started)

    started = step(3, "Load demo data")
    import demo_data
    summary = demo_data.load(str(CONF), DATABASE, today,
        portal_url=URL + DATABASE)
    print("    %(customers)d customers, %(invoices)d invoices, "
        "%(paid)d paid" % summary)
    for name, email, segment in summary['portal_users']:
        print("    portal user %s (%s): %s" % (email, segment, name))
    done(started)

    started = step(4, "Run the daily dunning of the past, as of each day")
    demo_data.run_history(DATABASE, today, summary)
    done(started)

    started = step(5, "Start the SMTP sink (127.0.0.1:%s), the local Twilio "
        "(127.0.0.1:%s) and the local Stripe (127.0.0.1:%s)" % (
            SMTP_PORT, SMS_PORT, STRIPE_PORT))
    servers = Servers()
    try:
        servers.start(summary['stripe_webhook'])
    except OSError as exception:
        servers.stop()
        sys.exit("    ERROR: cannot listen (%s): is another demo "
            "running?" % exception)
    print("    writing every email to %s and every SMS to %s" % (
            OUTBOX, SMS_OUTBOX), flush=True)
    done(started)

    try:
        started = step(6, "Run the daily dunning of today")
        ran = False
        try:
            ran = run_wizard(today, "daily run of today")
            propose_rewards()
        except Exception as exception:
            import traceback
            traceback.print_exc()
            print("    ERROR: the dunning run failed: %s" % exception)
        if not ran:
            print("    The daily dunning did not run: the data is loaded but "
                "no reminder was produced.")
        # give the sinks a moment to write the last messages
        time.sleep(1)
        done(started)

        started = step(7, "Summary")
        print_summary(summary, today)
        done(started)
        print("\nDemo ready in %.0fs." % (time.monotonic() - begin))

        if options.no_serve:
            servers.stop()
            return 0
        step(8, "Serve %s" % URL)
        return serve(servers, summary)
    except BaseException:
        servers.stop()
        raise


if __name__ == '__main__':
    sys.exit(main())
