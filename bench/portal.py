"""Portal load benchmark: concurrent customers on the balance page and the
statement PDF, served by trytond's WSGI application on PostgreSQL.

1. the daily-run bench's template ``bench_tpl_<N>`` (bench/generate.py:
   N open receivable lines, N/10 parties, a paid history of N/2 invoices)
   is copied to ``bench_portal_<N>``, dunning_portal is activated on the
   copy, and each receivable debit line becomes a posted (or paid) customer
   invoice, each party an address and a portal user (one password);
2. trytond's WSGI application is served by --processes processes of
   --threads threads each, on one listening socket;
3. --clients threads, each a ``requests`` session logged in as a customer
   of its own through the login form, fetch in turn the balance page and
   the statement PDF of the last --statement-days days for --seconds;
4. p50/p95 (ms) and throughput per page are printed with the flags and the
   sizes. Timings are measured, never asserted.

Usage: python -O bench/portal.py [--n N] [--clients 50] [--seconds 30]
                                  [--processes 2] [--threads 16]
                                  [--pages balance statement]
"""
import argparse
import datetime as dt
import json
import logging
import os
import random
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import generate  # noqa: E402

MODULE = 'dunning_portal'
PASSWORD = 'Bench-portal-2026'
VERSION = 1
PAGES = ('balance', 'statement')


def database_name(n):
    return f'bench_portal_{n}'


def interpreter_flags():
    return ['-' + 'O' * sys.flags.optimize] if sys.flags.optimize else []


# --------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------
def ensure_database(n, regenerate=False):
    """The metadata of bench_portal_<n>, built from the run bench's
    template when missing, outdated or asked for"""
    from psycopg import sql
    name = database_name(n)
    fingerprint = generate.module_fingerprint(MODULE)
    with common.admin_connect() as conn:
        if not regenerate and common.database_exists(conn, name):
            meta = generate.read_meta(conn, name)
            if (meta and meta.get('version') == VERSION
                    and meta.get('fingerprint') == fingerprint):
                print(f"portal: reusing {name} ({meta['customers']} "
                    f"customers, {meta['invoices']} invoices)", flush=True)
                return meta
    template = generate.ensure_template(n)
    template = generate.refresh_module(n, template)
    build = name + '__build'
    t0 = time.perf_counter()
    with common.admin_connect() as conn:
        common.drop_database(conn, build)
        conn.execute(sql.SQL(
                'CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY').format(
                sql.Identifier(build),
                sql.Identifier(common.template_name(n))))
    print(f"portal: {build} copied from {common.template_name(n)}; "
        f"activating {MODULE}", flush=True)
    try:
        common.run([common.VENV_BIN / 'trytond-admin', '-c',
                common.CONFIG_FILE, '-d', build, '-u', MODULE,
                '--activate-dependencies'], env=common.trytond_env())
        sizes = add_portal_data(build, template)
    except BaseException:
        with common.admin_connect() as conn:
            common.drop_database(conn, build)
        raise
    meta = dict(sizes, complete=True, version=VERSION, n=n,
        fingerprint=fingerprint, company=template['company'],
        base_date=template['base_date'],
        seconds=round(time.perf_counter() - t0, 1))
    with common.admin_connect() as conn:
        common.drop_database(conn, name)
        conn.execute(sql.SQL('ALTER DATABASE {} RENAME TO {}').format(
                sql.Identifier(build), sql.Identifier(name)))
        generate.write_meta(conn, name, meta)
    print(f"portal: {name} ready in {meta['seconds']} s", flush=True)
    return meta


def add_portal_data(dbname, template):
    """Addresses, invoices and portal users for the generated ledger, in a
    few set-based statements"""
    import psycopg
    from trytond.modules.web_user.user import PASSWORD_HASH
    password_hash = PASSWORD_HASH.hash(PASSWORD)
    company = template['company']
    receivable = template['receivable']
    journal = template['journal']
    with psycopg.connect(common.dsn(dbname)) as conn:
        currency, = conn.execute(
            'SELECT currency FROM company_company WHERE id = %s',
            (company,)).fetchone()
        conn.execute("""
            INSERT INTO party_address (party, active, street_unstructured,
                postal_code, city, sequence, create_date, create_uid)
            SELECT p.id, true, p.code || ' rue des Garages', '69003',
                'Lyon', 10, now(), 1
            FROM party_party p
            WHERE p.code LIKE 'BENCH%%'
                AND NOT EXISTS (SELECT 1 FROM party_address a
                    WHERE a.party = p.id)""")
        # Each receivable debit line of a move is the line to pay of a
        # customer invoice, paid when it is reconciled.
        conn.execute("""
            INSERT INTO account_invoice (company, type, number,
                number_alnum, number_digit, reference,
                invoice_date, accounting_date, party, invoice_address,
                currency, journal, account, move, state, description,
                total_amount_cache, untaxed_amount_cache, tax_amount_cache,
                sequence_type_cache, create_date, create_uid)
            SELECT %(company)s, 'out', 'B' || l.id, 'B' || l.id, l.id,
                NULL, m.date, NULL,
                l.party, a.id, %(currency)s, %(journal)s, l.account, l.move,
                CASE WHEN l.reconciliation IS NULL THEN 'posted'
                    ELSE 'paid' END,
                'Bench parts', l.debit, l.debit, 0, 'invoice', now(), 1
            FROM account_move_line l
            JOIN account_move m ON m.id = l.move
            JOIN party_party p ON p.id = l.party
            JOIN LATERAL (SELECT MIN(id) AS id FROM party_address
                WHERE party = l.party) a ON true
            WHERE l.account = %(receivable)s AND l.debit > 0
                AND l.maturity_date IS NOT NULL
                AND p.code LIKE 'BENCH%%'
            """, {'company': company, 'currency': currency,
                'journal': journal, 'receivable': receivable})
        conn.execute("""
            UPDATE account_move m SET origin = 'account.invoice,' || i.id
            FROM account_invoice i WHERE i.move = m.id
                AND i.number LIKE 'B%%'""")
        conn.execute("""
            INSERT INTO web_user (email, party, password_hash, active,
                email_valid, create_date, create_uid)
            SELECT c.value, c.party, %s, true, true, now(), 1
            FROM party_contact_mechanism c
            JOIN party_party p ON p.id = c.party
            WHERE c.type = 'email' AND p.code LIKE 'BENCH%%'
            """, (password_hash,))
        conn.commit()
        sizes = {}
        for key, query in [
                ('customers', "SELECT COUNT(*) FROM web_user"),
                ('invoices', "SELECT COUNT(*) FROM account_invoice "
                    "WHERE number LIKE 'B%'"),
                ('open_invoices', "SELECT COUNT(*) FROM account_invoice "
                    "WHERE number LIKE 'B%' AND state = 'posted'"),
                ('receivable_lines', "SELECT COUNT(*) FROM account_move_line "
                    f"WHERE account = {receivable}"),
                ]:
            sizes[key], = conn.execute(query).fetchone()
    with psycopg.connect(common.dsn(dbname), autocommit=True) as conn:
        conn.execute('VACUUM (ANALYZE)')
    return sizes


def customers(dbname, count, seed):
    "count (email, party id) of portal users drawn at random"
    import psycopg
    with psycopg.connect(common.dsn(dbname)) as conn:
        rows = conn.execute(
            'SELECT email, party FROM web_user ORDER BY id').fetchall()
    return random.Random(seed).sample(rows, min(count, len(rows)))


# --------------------------------------------------------------------------
# The server: processes sharing one listening socket, threads in each
# --------------------------------------------------------------------------
def serve(dbname, processes, threads):
    """Fork the server processes; return (port, their pids)"""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('127.0.0.1', 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    pids = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            try:
                serve_child(dbname, listener, threads)
            finally:
                os._exit(0)
        pids.append(pid)
    listener.close()
    return port, pids


def serve_child(dbname, listener, threads):
    from concurrent.futures import ThreadPoolExecutor
    from socketserver import ThreadingMixIn

    from werkzeug.serving import BaseWSGIServer

    from trytond.pool import Pool
    from trytond.wsgi import app

    # One line per request would cost the server more than some pages.
    logging.getLogger('werkzeug').setLevel(logging.WARNING)
    # Load the pool first: trytond fails the first request of a database
    # it has to load lazily.
    Pool(dbname).init()
    executor = ThreadPoolExecutor(threads)

    class Server(ThreadingMixIn, BaseWSGIServer):
        "At most `threads` requests at once, as a WSGI server's workers"
        def process_request(self, request, client_address):
            executor.submit(
                self.process_request_thread, request, client_address)

    server = Server('127.0.0.1', listener.getsockname()[1], app,
        fd=listener.fileno())
    server.serve_forever()


# --------------------------------------------------------------------------
# The customers
# --------------------------------------------------------------------------
class Customer(threading.Thread):
    "A customer logged in to the portal, reading its pages in turn"

    def __init__(self, root, email, period, until, start, pages=PAGES):
        super().__init__(daemon=True)
        self.root, self.email, self.period = root, email, period
        self.until, self.start_event = until, start
        self.pages = pages
        self.timings = {page: [] for page in pages}
        self.errors = []

    def login(self):
        import requests
        import re
        self.session = requests.Session()
        page = self.session.get(self.root + 'login', timeout=120)
        token = re.search(r'name="csrf_token" value="([^"]+)"',
            page.text).group(1)
        response = self.session.post(self.root + 'login', data={
                'csrf_token': token, 'email': self.email,
                'password': PASSWORD}, timeout=120, allow_redirects=False)
        if response.status_code != 303:
            raise RuntimeError(f"{self.email} could not log in: "
                f"{response.status_code}")

    def run(self):
        start, end = self.period
        urls = {
            'balance': self.root,
            'statement': f'{self.root}statement.pdf?from={start}&to={end}',
            }
        self.start_event.wait()
        while time.monotonic() < self.until[0]:
            for page in self.pages:
                t0 = time.perf_counter()
                try:
                    response = self.session.get(urls[page], timeout=120)
                    ok = response.status_code == 200 and (
                        page != 'statement'
                        or response.content[:5] == b'%PDF-')
                except Exception as exception:
                    ok, response = False, exception
                elapsed = (time.perf_counter() - t0) * 1000
                if ok:
                    self.timings[page].append(elapsed)
                else:
                    self.errors.append((page, str(
                                getattr(response, 'status_code', response))))


def percentile(values, p):
    if not values:
        return float('nan')
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (k - low)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=10_000,
        help="open receivable lines of the generated ledger "
        "(N/10 customers; default %(default)s)")
    parser.add_argument('--clients', type=int, default=50,
        help="concurrent customers (default %(default)s)")
    parser.add_argument('--seconds', type=float, default=30,
        help="how long they read their pages (default %(default)s)")
    parser.add_argument('--processes', type=int,
        default=max(2, os.cpu_count() or 1),
        help="server processes (default: the CPUs, at least 2)")
    parser.add_argument('--threads', type=int, default=16,
        help="threads per server process (default %(default)s)")
    parser.add_argument('--statement-days', type=int, default=365,
        help="period of the statement (default %(default)s days)")
    parser.add_argument('--pages', nargs='+', choices=PAGES, default=PAGES,
        help="the pages each customer reads in turn (default: both)")
    parser.add_argument('--regenerate', action='store_true',
        help="rebuild the portal database even if it is current")
    parser.add_argument('--seed', type=int, default=7)
    args = parser.parse_args(argv)
    # Before any trytond import: the configuration is read then.
    os.environ['TRYTOND_CONFIG'] = str(common.ensure_config())

    print(f"bench-portal: python {sys.version.split()[0]}, "
        f"sys.flags.optimize={sys.flags.optimize} ({sys.executable} "
        f"{' '.join(interpreter_flags())}), {os.cpu_count()} CPUs, "
        f"PostgreSQL {common.PG_URI}", flush=True)
    meta = ensure_database(args.n, regenerate=args.regenerate)
    dbname = database_name(args.n)
    emails = customers(dbname, args.clients, args.seed)
    end = dt.date.fromisoformat(meta['base_date'])
    period = (end - dt.timedelta(days=args.statement_days)).isoformat(), (
        end.isoformat())

    port, pids = serve(dbname, args.processes, args.threads)
    root = f'http://127.0.0.1:{port}/{dbname}/portal/'
    try:
        wait_listening(port)
        until = [float('inf')]
        start = threading.Event()
        clients = [Customer(root, email, period, until, start, args.pages)
            for email, _ in emails]
        t0 = time.perf_counter()
        for client in clients:
            client.login()
        print(f"bench-portal: {len(clients)} customers logged in "
            f"through the login form in {time.perf_counter() - t0:.1f} s",
            flush=True)
        for client in clients:
            client.start()
        t0 = time.monotonic()
        until[0] = t0 + args.seconds
        start.set()
        for client in clients:
            client.join()
        wall = time.monotonic() - t0
    finally:
        for pid in pids:
            os.kill(pid, 15)
        for pid in pids:
            os.waitpid(pid, 0)

    print(f"bench-portal: N={args.n} open lines, {meta['customers']} "
        f"customers with a portal login, {meta['invoices']} invoices "
        f"({meta['open_invoices']} open), {meta['receivable_lines']} "
        f"receivable lines; statement {period[0]} to {period[1]}",
        flush=True)
    print(f"bench-portal: {len(clients)} concurrent customers for "
        f"{wall:.1f} s against {args.processes} server processes x "
        f"{args.threads} threads (werkzeug, trytond WSGI app), "
        f"server and clients under python "
        f"{' '.join(interpreter_flags()) or '(no -O)'}", flush=True)
    results = {}
    for page in args.pages:
        timings = [t for c in clients for t in c.timings[page]]
        errors = [e for c in clients for e in c.errors if e[0] == page]
        results[page] = {
            'requests': len(timings), 'errors': len(errors),
            'p50_ms': round(percentile(timings, 50), 1),
            'p95_ms': round(percentile(timings, 95), 1),
            'mean_ms': round(statistics.fmean(timings), 1)
            if timings else None,
            'per_second': round(len(timings) / wall, 1),
            }
        r = results[page]
        print(f"{page:>9}: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
            f"{r['per_second']} pages/s ({r['requests']} in {wall:.0f} s, "
            f"{r['errors']} errors"
            + (f": {sorted(set(e[1] for e in errors))[:3]}"
                if errors else '') + ")", flush=True)
    print('BENCH-PORTAL ' + json.dumps({
                'n': args.n, 'clients': len(clients),
                'processes': args.processes, 'threads': args.threads,
                'optimize': sys.flags.optimize, 'seconds': round(wall, 1),
                'sizes': {k: meta[k] for k in (
                        'customers', 'invoices', 'open_invoices',
                        'receivable_lines')},
                'pages': results}), flush=True)
    return 0


def wait_listening(port, timeout=300):
    "Wait until the server answers (each process loads the pool first)"
    import requests
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            requests.get(f'http://127.0.0.1:{port}/', timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.5)
    raise RuntimeError(f"the server did not answer on port {port}")


if __name__ == '__main__':
    sys.exit(main())
