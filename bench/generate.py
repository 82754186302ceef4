"""Build (or reuse) the template database ``bench_tpl_<N>`` for the benchmark.

Steps:
1. ``trytond-admin --all`` on a fresh database, then
   ``-u dunning_advanced --activate-dependencies``;
2. company (EUR), chart of accounts, fiscal year around the base date and
   the previous one (with their periods), a dunning procedure with 3 levels (+5, +15, +30 days) set as the default procedure of
   the account configuration -- all with proteus, in a child process; when
   our module is there, the levels also get ``offset_days`` and an email
   reminder (``channels`` + ``template``) so that our run fills the outbox;
3. bulk SQL (COPY): N/10 parties (with their ``party.party.dunning_procedure``
   multivalue rows and one email contact mechanism each) and N open
   receivable lines, each in its own balanced
   POSTED move (receivable debit with party and maturity date / revenue
   credit); maturity dates spread over [date - 60, date + 10] days;
   and a paid history: N/2 invoices paid in the 365 days before the base
   date, spread over the parties, each party with a lateness habit drawn
   once (on time, once late, often late, very late; a few parties have no
   history); each paid invoice is a POSTED invoice move (receivable debit
   with maturity date / revenue credit) and a POSTED payment move on the
   payment date (cash debit / receivable credit), the two receivable lines
   reconciled together (``account_move_reconciliation`` dated on the
   payment date);
4. VACUUM ANALYZE, rename the build database to ``bench_tpl_<N>`` and record
   the metadata (JSON) as the database comment, which is the "complete" mark.

The build happens under a temporary name, so an interrupted generation never
leaves a template that looks complete.

Usage: python -O bench/generate.py --n 10000 [--regenerate] [--date YYYY-MM-DD]
"""
import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

LEVEL_DAYS = (5, 15, 30)
MATURITY_PAST_DAYS = 60
MATURITY_FUTURE_DAYS = 10
TERM_DAYS = 30          # move date = maturity date - TERM_DAYS
SEED = 20261124
CHUNK = 50_000
GENERATOR_VERSION = 3
# Paid history: PAID_RATIO * N invoices paid over the HISTORY_DAYS before the
# base date, maturities in [base - HISTORY_DAYS, base - HISTORY_RECENT_DAYS]
PAID_RATIO = 0.5
HISTORY_DAYS = 365
HISTORY_RECENT_DAYS = 20
# Share of the parties without any paid invoice (segment "new")
NO_HISTORY_SHARE = 0.05
# Lateness habit of the parties with a history, drawn once per party:
# (name, weight); days late per invoice in _lateness()
HABITS = (
    ('on_time', 60),      # every invoice paid -5..0 days after its due date
    ('once_late', 20),    # one invoice 5..40 days late, the others on time
    ('often_late', 15),   # each invoice late 5..40 days with p = 0.6
    ('very_late', 5),     # every invoice 30..90 days late
    )
# Used only when our module defines them on account.dunning.level
LEVEL_CHANNELS = ('email',)
LEVEL_TEMPLATES = ('template_overdue', 'template_firm', 'template_final')
OUR_MODULE = 'dunning_advanced'

BULK_TABLES = (
    'party_party', 'party_party_dunning_procedure', 'party_contact_mechanism',
    'account_move', 'account_move_reconciliation', 'account_move_line')


# --------------------------------------------------------------------------
# Template metadata
# --------------------------------------------------------------------------
def read_meta(conn, name):
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname = %s", (name,)).fetchone()
    if not row or not row[0]:
        return None
    try:
        meta = json.loads(row[0])
    except ValueError:
        return None
    if not isinstance(meta, dict) or not meta.get('complete'):
        return None
    return meta


# --------------------------------------------------------------------------
# Step 2: proteus setup (runs in a child process, see --setup)
# --------------------------------------------------------------------------
def proteus_setup(dbname, base_date):
    os.environ['TRYTOND_CONFIG'] = str(common.ensure_config())
    from proteus import Model
    from proteus import config as pconfig
    pconfig.set_trytond(dbname, config_file=str(common.CONFIG_FILE))

    from trytond.modules.account.tests.tools import (
        create_chart, create_fiscalyear, get_accounts)
    from trytond.modules.account_invoice.tests.tools import (
        set_fiscalyear_invoice_sequences)
    from trytond.modules.company.tests.tools import (
        create_company, get_company)

    create_company(currency='EUR')
    company = get_company()
    create_chart(company)
    fiscalyear = create_fiscalyear(company, today=base_date)
    fiscalyear = set_fiscalyear_invoice_sequences(fiscalyear)
    fiscalyear.click('create_period')
    # The paid history goes back HISTORY_DAYS + TERM_DAYS before the base
    # date (invoice move of the oldest paid invoice): the previous fiscal
    # year, 12 months up to the day before the current one, covers it.
    previous = _previous_fiscalyear(company, fiscalyear)
    assert previous.start_date <= base_date - dt.timedelta(
        days=HISTORY_DAYS + TERM_DAYS + 1), previous.start_date
    accounts = get_accounts(company)

    Procedure = Model.get('account.dunning.procedure')
    Level = Model.get('account.dunning.level')
    has_offset_days = 'offset_days' in Level._fields
    # Our levels tell the customer through channels with a template: give
    # the bench levels an email reminder so that our run fills the outbox
    # (parties without a reachable email fall back to a letter).
    has_channels = {'channels', 'template'} <= set(Level._fields)
    templates = [None] * len(LEVEL_DAYS)
    if has_channels:
        templates = [_template(fs_id) for fs_id in LEVEL_TEMPLATES]
    procedure = Procedure(name='Bench procedure')
    for sequence, (days, template) in enumerate(
            zip(LEVEL_DAYS, templates), 1):
        level = procedure.levels.new()
        level.sequence = sequence
        level.overdue = dt.timedelta(days=days)
        if has_offset_days:
            level.offset_days = days
        if has_channels and template is not None:
            level.channels = list(LEVEL_CHANNELS)
            level.template = template
    procedure.save()

    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.default_dunning_procedure = procedure
    configuration.save()

    Journal = Model.get('account.journal')
    journal, = Journal.find([('type', '=', 'revenue')], limit=1)
    cash_journals = Journal.find([('type', '=', 'cash')], limit=1)
    cash_journal = cash_journals[0] if cash_journals else journal
    # the account debited by the payments: cash, else any non-receivable
    cash_account = (accounts.get('cash') or accounts.get('expense')
        or accounts['revenue'])

    Period = Model.get('account.period')
    periods = Period.find([
            ('fiscalyear', 'in', [previous.id, fiscalyear.id]),
            ('type', '=', 'standard'),
            ])
    meta = {
        'company': company.id,
        'currency': company.currency.code,
        'receivable': accounts['receivable'].id,
        'revenue': accounts['revenue'].id,
        'journal': journal.id,
        'procedure': procedure.id,
        'levels': [l.id for l in procedure.levels],
        'offset_days_set': has_offset_days,
        'level_channels': [
            list(l.channels) if has_channels and l.channels else []
            for l in procedure.levels],
        'cash_journal': cash_journal.id,
        'cash_account': cash_account.id,
        'reconciliation_sequence':
            configuration.reconciliation_sequence.id
            if configuration.reconciliation_sequence else None,
        'fiscalyear': fiscalyear.id,
        'fiscalyears': [previous.id, fiscalyear.id],
        'move_sequence': fiscalyear.move_sequence.id,
        # id, start, end, strict sequence numbering its posted moves
        'periods': [
            [p.id, p.start_date.isoformat(), p.end_date.isoformat(),
                (p.move_sequence or p.fiscalyear.move_sequence).id]
            for p in periods],
        }
    print('SETUP-META ' + json.dumps(meta), flush=True)


def _previous_fiscalyear(company, fiscalyear):
    "The fiscal year of the 12 months before fiscalyear, with its periods"
    from dateutil.relativedelta import relativedelta
    from proteus import Model

    from trytond.modules.account_invoice.tests.tools import (
        set_fiscalyear_invoice_sequences)
    FiscalYear = Model.get('account.fiscalyear')
    Sequence = Model.get('ir.sequence.strict')
    end_date = fiscalyear.start_date - dt.timedelta(days=1)
    start_date = fiscalyear.start_date - relativedelta(years=1)
    name = f'{start_date.year}-{end_date.year}'
    previous = FiscalYear(name=name, start_date=start_date,
        end_date=end_date, company=company)
    move_sequence = Sequence(name=name,
        sequence_type=fiscalyear.move_sequence.sequence_type,
        company=company)
    move_sequence.save()
    previous.move_sequence = move_sequence
    previous = set_fiscalyear_invoice_sequences(previous)
    previous.click('create_period')
    return previous


def _template(fs_id):
    """Our reminder template fs_id, else any template, else None."""
    from proteus import Model
    from proteus.config import get_config
    ModelData = Model.get('ir.model.data')
    Template = Model.get('account.dunning.template')
    try:
        return Template(ModelData.get_id(
                f'{OUR_MODULE}.{fs_id}', get_config().context))
    except Exception:
        templates = Template.find([], limit=1)
        return templates[0] if templates else None


# --------------------------------------------------------------------------
# Step 3: bulk load
# --------------------------------------------------------------------------
def _secondary_indexes(conn, table):
    """Indexes of table that are neither primary key nor constraint."""
    return conn.execute("""
        SELECT ic.relname, pg_get_indexdef(ix.indexrelid)
        FROM pg_index ix
        JOIN pg_class ic ON ic.oid = ix.indexrelid
        JOIN pg_class tc ON tc.oid = ix.indrelid
        JOIN pg_namespace ns ON ns.oid = tc.relnamespace
        WHERE tc.relname = %s AND ns.nspname = 'public'
            AND NOT ix.indisprimary
            AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)
        """, (table,)).fetchall()


def _next_id(conn, table):
    return conn.execute(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"'
        ).fetchone()[0]


def _set_sequence(conn, table):
    conn.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
        f'(SELECT GREATEST(COALESCE(MAX(id), 0), 1) FROM "{table}"))',
        (table,))


def _copy(conn, statement, rows):
    "COPY the rows (tab separated text lines) in chunks of CHUNK lines"
    with conn.cursor().copy(statement) as copy:
        buf = []
        for row in rows:
            buf.append(row)
            if len(buf) >= CHUNK:
                copy.write(''.join(buf))
                buf.clear()
        copy.write(''.join(buf))


def _amount(cents):
    return f'{cents // 100}.{cents % 100:02d}'


def _lateness(rng, habit, first):
    """Days between due date and payment of one invoice of a party with
    habit; first: it is the first invoice drawn for the party"""
    if habit == 'once_late':
        return rng.randint(5, 40) if first else rng.randint(-5, 0)
    if habit == 'often_late':
        return rng.randint(5, 40) if rng.random() < 0.6 else rng.randint(
            -5, 0)
    if habit == 'very_late':
        return rng.randint(30, 90)
    return rng.randint(-5, 0)  # on_time


def draw_history(n, n_parties, seed=SEED):
    """The paid invoices: (party index, maturity offset, payment offset,
    amount in cents) arrays, offsets in days from the base date, and the
    number of parties per habit.

    Drawn with its own random generator, so that the open lines stay the
    same as without a history for a given N and date.
    """
    rng = random.Random(seed + 1)
    names = [name for name, _ in HABITS]
    weights = [weight for _, weight in HABITS]
    habit = [None if rng.random() < NO_HISTORY_SHARE
        else rng.choices(names, weights)[0] for _ in range(n_parties)]
    with_history = [p for p, h in enumerate(habit) if h is not None]
    n_paid = round(n * PAID_RATIO) if with_history else 0
    # at least one invoice per party with a history, the rest at random
    paid_party = array('i', with_history[:n_paid])
    paid_party.extend(rng.choice(with_history)
        for _ in range(n_paid - len(paid_party)))
    rng.shuffle(paid_party)
    maturity = array('i')
    paid = array('i')
    cents = array('i')
    seen = bytearray(n_parties)
    for party in paid_party:
        due = rng.randint(-HISTORY_DAYS, -HISTORY_RECENT_DAYS)
        days = _lateness(rng, habit[party], not seen[party])
        seen[party] = 1
        maturity.append(due)
        # paid in the window, at the latest the day before the base date
        paid.append(min(max(due + days, 1 - HISTORY_DAYS), -1))
        cents.append(rng.randint(1_000, 500_000))
    habits = {name: habit.count(name) for name in names}
    habits['no_history'] = habit.count(None)
    return (paid_party, maturity, paid, cents), habits


def bulk_load(dbname, n, base_date, meta, seed=SEED):
    import psycopg
    from psycopg import sql

    n_parties = max(1, n // 10)
    rng = random.Random(seed)
    # Per line: party index, maturity offset in days, amount in cents
    line_party = array('i', (rng.randrange(n_parties) for _ in range(n)))
    line_offset = array('i', (
            rng.randint(-MATURITY_PAST_DAYS, MATURITY_FUTURE_DAYS)
            for _ in range(n)))
    line_cents = array('i', (rng.randint(1_000, 500_000) for _ in range(n)))

    t0 = time.perf_counter()
    (paid_party, paid_maturity, paid_offset, paid_cents), habits = (
        draw_history(n, n_parties, seed))
    n_paid = len(paid_party)
    timings = {'history_draw': time.perf_counter() - t0}

    periods = [(pid, dt.date.fromisoformat(s), dt.date.fromisoformat(e), seq)
        for pid, s, e, seq in meta['periods']]

    days = {}

    def day(off):
        "(date, period, move sequence) of base date + off days"
        if off not in days:
            date = base_date + dt.timedelta(days=off)
            for pid, start, end, seq in periods:
                if start <= date <= end:
                    days[off] = (date.isoformat(), pid, seq)
                    break
            else:
                raise ValueError(f"no period for {date}")
        return days[off]

    # Pre-compute per offset: maturity, move date, period, move sequence
    by_offset = {}
    for off in range(-MATURITY_PAST_DAYS, MATURITY_FUTURE_DAYS + 1):
        maturity, _, _ = day(off)
        move_date, period, seq = day(off - TERM_DAYS)
        by_offset[off] = (maturity, move_date, period, seq)

    company = meta['company']
    journal = meta['journal']
    cash_journal = meta['cash_journal']
    receivable = meta['receivable']
    revenue = meta['revenue']
    cash = meta['cash_account']
    procedure = meta['procedure']
    now = dt.datetime.now().isoformat(sep=' ')
    uid = 1  # admin

    with psycopg.connect(common.dsn(dbname)) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        # The data is consistent by construction: skip FK triggers
        conn.execute("SET session_replication_role = replica")
        dropped = []
        for table in BULK_TABLES:
            for name, definition in _secondary_indexes(conn, table):
                conn.execute(sql.SQL('DROP INDEX {}').format(
                        sql.Identifier(name)))
                dropped.append(definition)

        t0 = time.perf_counter()
        party0 = _next_id(conn, 'party_party')
        ppdp0 = _next_id(conn, 'party_party_dunning_procedure')
        _copy(conn,
            'COPY party_party (id, active, code, code_alnum, code_digit, '
            'name, create_date, create_uid) FROM STDIN',
            (f'{party0 + i}\tt\tBENCH{i + 1:07d}\tBENCH{i + 1:07d}\t{i + 1}\t'
                f'Bench customer {i + 1:07d}\t{now}\t{uid}\n'
                for i in range(n_parties)))
        _copy(conn,
            'COPY party_party_dunning_procedure (id, party, '
            'dunning_procedure, create_date, create_uid) FROM STDIN',
            (f'{ppdp0 + i}\t{party0 + i}\t{procedure}\t{now}\t{uid}\n'
                for i in range(n_parties)))
        # One email per party, flagged for dunning when our module has the
        # flag (party_contact_mechanism.dunning)
        columns = {c for c, in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'party_contact_mechanism'")}
        flag = ', dunning' if 'dunning' in columns else ''
        cm0 = _next_id(conn, 'party_contact_mechanism')

        def contacts():
            for i in range(n_parties):
                email = f'customer{i + 1:07d}@example.com'
                yield (f'{cm0 + i}\t{party0 + i}\temail\t{email}\t'
                    f'{email}\tt\t10\t{now}\t{uid}'
                    + ('\tt' if flag else '') + '\n')
        _copy(conn,
            'COPY party_contact_mechanism (id, party, type, value, '
            f'value_compact, active, sequence, create_date, create_uid'
            f'{flag}) FROM STDIN', contacts())
        timings['parties'] = time.perf_counter() - t0

        # Ids: the N open moves first, then per paid invoice k its invoice
        # move (move0 + N + 2k) and its payment move (move0 + N + 2k + 1);
        # lines: 2 per open move, then 4 per paid invoice (receivable debit,
        # revenue credit, cash debit, receivable credit).
        t0 = time.perf_counter()
        move0 = _next_id(conn, 'account_move')
        line0 = _next_id(conn, 'account_move_line')
        reconciliation0 = _next_id(conn, 'account_move_reconciliation')
        hist_move0 = move0 + n
        hist_line0 = line0 + 2 * n
        # next number of each strict move sequence (one per fiscal year),
        # continued by Tryton when it posts
        numbers = {}

        def number(seq):
            numbers[seq] = numbers.get(seq, 0) + 1
            return numbers[seq]

        def moves():
            for i in range(n):
                _, move_date, period, seq = by_offset[line_offset[i]]
                yield (f'{move0 + i}\t{company}\t{journal}\t{period}\t'
                    f'{move_date}\t{move_date}\tposted\t{number(seq)}\t'
                    f'{now}\t{uid}\n')
            for k in range(n_paid):
                move_date, period, seq = day(paid_maturity[k] - TERM_DAYS)
                yield (f'{hist_move0 + 2 * k}\t{company}\t{journal}\t'
                    f'{period}\t{move_date}\t{move_date}\tposted\t'
                    f'{number(seq)}\t{now}\t{uid}\n')
                pay_date, period, seq = day(paid_offset[k])
                yield (f'{hist_move0 + 2 * k + 1}\t{company}\t'
                    f'{cash_journal}\t{period}\t{pay_date}\t{pay_date}\t'
                    f'posted\t{number(seq)}\t{now}\t{uid}\n')
        _copy(conn,
            'COPY account_move (id, company, journal, period, date, '
            'post_date, state, number, create_date, create_uid) '
            'FROM STDIN', moves())
        timings['moves'] = time.perf_counter() - t0

        # One reconciliation per paid invoice, dated on the payment,
        # numbered by the reconciliation sequence of the configuration
        t0 = time.perf_counter()
        padding = 0
        rec_seq = meta.get('reconciliation_sequence')
        if rec_seq:
            padding, = conn.execute(
                'SELECT COALESCE(padding, 0) FROM ir_sequence WHERE id = %s',
                (rec_seq,)).fetchone()
        rec_number0 = 1
        _copy(conn,
            'COPY account_move_reconciliation (id, number, company, date, '
            'create_date, create_uid) FROM STDIN',
            (f'{reconciliation0 + k}\t{rec_number0 + k:0{padding}d}\t'
                f'{company}\t{day(paid_offset[k])[0]}\t{now}\t{uid}\n'
                for k in range(n_paid)))
        timings['reconciliations'] = time.perf_counter() - t0

        t0 = time.perf_counter()

        def lines():
            for i in range(n):
                maturity, _, _, _ = by_offset[line_offset[i]]
                amount = _amount(line_cents[i])
                move = move0 + i
                # receivable debit with party and maturity date
                yield (f'{line0 + 2 * i}\t{move}\t{receivable}\t'
                    f'{party0 + line_party[i]}\t{amount}\t0\t{maturity}\t'
                    f'\\N\tvalid\t{now}\t{uid}\n')
                # revenue credit
                yield (f'{line0 + 2 * i + 1}\t{move}\t{revenue}\t\\N\t'
                    f'0\t{amount}\t\\N\t\\N\tvalid\t{now}\t{uid}\n')
            for k in range(n_paid):
                amount = _amount(paid_cents[k])
                party = party0 + paid_party[k]
                maturity = day(paid_maturity[k])[0]
                rec = reconciliation0 + k
                line = hist_line0 + 4 * k
                invoice_move = hist_move0 + 2 * k
                # invoice: receivable debit with maturity date / revenue
                yield (f'{line}\t{invoice_move}\t{receivable}\t{party}\t'
                    f'{amount}\t0\t{maturity}\t{rec}\tvalid\t{now}\t{uid}\n')
                yield (f'{line + 1}\t{invoice_move}\t{revenue}\t\\N\t'
                    f'0\t{amount}\t\\N\t\\N\tvalid\t{now}\t{uid}\n')
                # payment: cash debit / receivable credit, no maturity date
                yield (f'{line + 2}\t{invoice_move + 1}\t{cash}\t\\N\t'
                    f'{amount}\t0\t\\N\t\\N\tvalid\t{now}\t{uid}\n')
                yield (f'{line + 3}\t{invoice_move + 1}\t{receivable}\t'
                    f'{party}\t0\t{amount}\t\\N\t{rec}\tvalid\t{now}\t'
                    f'{uid}\n')
        _copy(conn,
            'COPY account_move_line (id, move, account, party, debit, '
            'credit, maturity_date, reconciliation, state, create_date, '
            'create_uid) FROM STDIN', lines())
        timings['lines'] = time.perf_counter() - t0

        for table in BULK_TABLES:
            _set_sequence(conn, table)
        for seq, count in numbers.items():
            conn.execute(
                'UPDATE ir_sequence_strict SET number_next_internal = %s '
                'WHERE id = %s', (count + 1, seq))
        if rec_seq and n_paid:
            # ir.sequence is backed by the SQL sequence ir_sequence_<id>
            # on PostgreSQL (else by number_next_internal)
            name = f'ir_sequence_{rec_seq}'
            if conn.execute('SELECT to_regclass(%s)', (name,)
                    ).fetchone()[0]:
                conn.execute('SELECT setval(%s, %s, false)',
                    (name, rec_number0 + n_paid))
            else:
                conn.execute(
                    'UPDATE ir_sequence SET number_next_internal = %s '
                    'WHERE id = %s', (rec_number0 + n_paid, rec_seq))

        t0 = time.perf_counter()
        conn.execute("SET session_replication_role = DEFAULT")
        for definition in dropped:
            conn.execute(definition)
        timings['indexes'] = time.perf_counter() - t0
        conn.commit()

        # Sanity checks (cheap, set based)
        unbalanced, = conn.execute("""
            SELECT COUNT(*) FROM (
                SELECT l.move FROM account_move_line l
                WHERE l.move >= %s
                GROUP BY l.move HAVING SUM(l.debit - l.credit) <> 0) s
            """, (move0,)).fetchone()
        assert unbalanced == 0, f'{unbalanced} unbalanced moves'
        count, = conn.execute(
            'SELECT COUNT(*) FROM account_move_line '
            'WHERE account = %s AND party IS NOT NULL AND debit > 0 '
            'AND reconciliation IS NULL', (receivable,)).fetchone()
        assert count == n, (count, n)
        unbalanced, = conn.execute("""
            SELECT COUNT(*) FROM (
                SELECT l.reconciliation FROM account_move_line l
                WHERE l.reconciliation IS NOT NULL
                GROUP BY l.reconciliation
                HAVING SUM(l.debit - l.credit) <> 0) s
            """).fetchone()
        assert unbalanced == 0, f'{unbalanced} unbalanced reconciliations'
        count, = conn.execute(
            'SELECT COUNT(*) FROM account_move_line l '
            'JOIN account_move_reconciliation r ON r.id = l.reconciliation '
            'WHERE l.account = %s AND l.party IS NOT NULL '
            'AND l.maturity_date IS NOT NULL AND l.debit > l.credit '
            'AND r.date < %s', (receivable, base_date)).fetchone()
        assert count == n_paid, (count, n_paid)

    t0 = time.perf_counter()
    with psycopg.connect(common.dsn(dbname), autocommit=True) as conn:
        conn.execute('VACUUM (ANALYZE)')
    timings['vacuum_analyze'] = time.perf_counter() - t0
    history = {
        'paid_invoices': n_paid,
        'history_days': HISTORY_DAYS,
        'habits': habits,
        }
    return n_parties, history, timings


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------
def module_fingerprint(module=OUR_MODULE):
    """Hash of the module files that can change the database schema or data
    (python, xml, tryton.cfg; tests excluded)."""
    directory = common.ROOT / 'addons' / module
    digest = hashlib.sha1()
    if not directory.is_dir():
        return None
    for path in sorted(directory.rglob('*')):
        rel = path.relative_to(directory)
        if (not path.is_file() or rel.parts[0] in {'tests', 'locale'}
                or '__pycache__' in rel.parts
                or path.suffix not in {'.py', '.xml', '.cfg'}):
            continue
        digest.update(str(rel).encode() + b'\0' + path.read_bytes() + b'\0')
    return digest.hexdigest()


def native_modules(module=OUR_MODULE):
    """The dependencies of our module: the module set of a native-only
    template, used while our module does not activate."""
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(common.ROOT / 'addons' / module / 'tryton.cfg')
    depends = cfg.get('tryton', 'depends', fallback='').split()
    return sorted(set(depends) - {'ir', 'res'}) or ['account_dunning']


def write_meta(conn, name, meta):
    from psycopg import sql
    conn.execute(sql.SQL('COMMENT ON DATABASE {} IS {}').format(
            sql.Identifier(name), sql.Literal(json.dumps(meta))))


def refresh_module(n, meta, module=OUR_MODULE):
    """Update our module in the template when its source changed since the
    template was generated (untimed; keeps the template usable while the
    module is being written)."""
    if module not in meta.get('modules', []):
        return meta
    fingerprint = module_fingerprint(module)
    if fingerprint == meta.get('module_fingerprint'):
        return meta
    name = common.template_name(n)
    print(f"generate: {module} changed since {name} was generated; "
        f"updating it in the template", flush=True)
    t0 = time.perf_counter()
    common.run([common.VENV_BIN / 'trytond-admin', '-c', common.CONFIG_FILE,
            '-d', name, '-u', module], env=common.trytond_env())
    meta = dict(meta, module_fingerprint=fingerprint)
    with common.admin_connect() as conn:
        write_meta(conn, name, meta)
    print(f"generate: template updated in {time.perf_counter() - t0:.1f} s",
        flush=True)
    return meta


def ensure_template(n, regenerate=False, base_date=None, quiet=False,
        modules=(OUR_MODULE,)):
    """Return the metadata of the complete template for n, building it
    if needed."""
    modules = sorted(modules)
    from psycopg import sql
    name = common.template_name(n)
    build = name + '__build'
    with common.admin_connect() as conn:
        if not regenerate and common.database_exists(conn, name):
            meta = read_meta(conn, name)
            if (meta is not None and meta.get('n') == n
                    and set(modules) <= set(meta.get('modules', []))
                    and meta.get('generator_version') == GENERATOR_VERSION):
                if not quiet:
                    print(f"generate: reusing template {name} (generated "
                        f"{meta['generated_at']}, base date "
                        f"{meta['base_date']})", flush=True)
                return meta
            print(f"generate: {name} exists but is incomplete, outdated or "
                f"lacks {', '.join(modules)}; rebuilding (the old one is "
                f"replaced only once the new one is complete)", flush=True)
        common.drop_database(conn, build)
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 "
                "ENCODING 'UTF8'").format(sql.Identifier(build)))

    base_date = base_date or dt.date.today()
    print(f"generate: building {name} (N={n}, base date {base_date})",
        flush=True)
    try:
        return _build(n, name, build, base_date, modules)
    except BaseException:
        with common.admin_connect() as conn:
            common.drop_database(conn, build)
        raise


def _build(n, name, build, base_date, modules):
    import psycopg
    from psycopg import sql
    env = common.trytond_env()
    admin = common.VENV_BIN / 'trytond-admin'
    timings = {}
    t_all = t0 = time.perf_counter()
    fingerprint = module_fingerprint()
    common.run([admin, '-c', common.CONFIG_FILE, '-d', build,
            '--all', '--email', 'admin@example.com'], env=env)
    print(f"    ({time.perf_counter() - t0:.1f} s)", flush=True)
    common.run([admin, '-c', common.CONFIG_FILE, '-d', build,
            '-u', *modules, '--activate-dependencies'], env=env)
    print(f"    ({time.perf_counter() - t0:.1f} s)", flush=True)
    timings['trytond_admin'] = time.perf_counter() - t0

    t0 = time.perf_counter()
    proc = common.run([sys.executable, *_interpreter_flags(), __file__,
            '--setup', build, '--date', base_date.isoformat()], env=env)
    meta = None
    for line in proc.stdout.splitlines():
        if line.startswith('SETUP-META '):
            meta = json.loads(line[len('SETUP-META '):])
    if meta is None:
        raise RuntimeError('setup did not report its metadata:\n'
            + proc.stdout[-2000:] + proc.stderr[-2000:])
    timings['proteus_setup'] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_parties, history, bulk_timings = bulk_load(build, n, base_date, meta)
    timings['bulk_sql'] = time.perf_counter() - t0
    timings.update({'bulk_' + k: v for k, v in bulk_timings.items()})
    timings['total'] = time.perf_counter() - t_all

    meta.update({
            'complete': True,
            'generator_version': GENERATOR_VERSION,
            'n': n,
            'module_fingerprint': fingerprint,
            'parties': n_parties,
            'paid_invoices': history['paid_invoices'],
            'paid_history_days': history['history_days'],
            'paid_habits': history['habits'],
            'base_date': base_date.isoformat(),
            'generated_at': dt.datetime.now().isoformat(timespec='seconds'),
            'seconds': {k: round(v, 1) for k, v in timings.items()},
            })
    meta.pop('periods', None)
    with psycopg.connect(common.dsn(build)) as conn:
        meta['modules'] = [module for module, in conn.execute(
                "SELECT name FROM ir_module WHERE state = 'activated' "
                "ORDER BY name")]
    with common.admin_connect() as conn:
        common.drop_database(conn, name)
        conn.execute(sql.SQL('ALTER DATABASE {} RENAME TO {}').format(
                sql.Identifier(build), sql.Identifier(name)))
        write_meta(conn, name, meta)
    print(f"generate: paid history: {history['paid_invoices']} invoices "
        f"(parties by habit: "
        + ', '.join(f"{k} {v}" for k, v in history['habits'].items())
        + ')', flush=True)
    print(f"generate: {name} ready in {timings['total']:.1f} s "
        f"(trytond-admin {timings['trytond_admin']:.1f} s, "
        f"setup {timings['proteus_setup']:.1f} s, "
        f"bulk SQL {timings['bulk_sql']:.1f} s: "
        + ', '.join(f"{k} {v:.1f} s" for k, v in bulk_timings.items())
        + ')', flush=True)
    return meta


def _interpreter_flags():
    return ['-' + 'O' * sys.flags.optimize] if sys.flags.optimize else []


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=10_000)
    parser.add_argument('--regenerate', action='store_true')
    parser.add_argument('--date', type=dt.date.fromisoformat, default=None,
        help="base date of the maturity spread (default: today)")
    parser.add_argument('--modules', nargs='+', default=[OUR_MODULE],
        help="modules to activate (default: %(default)s); only to build a "
        "native-only template while our module does not load")
    parser.add_argument('--setup', metavar='DATABASE', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.setup:
        proteus_setup(args.setup, args.date or dt.date.today())
        return 0
    meta = ensure_template(args.n, regenerate=args.regenerate,
        base_date=args.date, modules=args.modules)
    meta = refresh_module(args.n, meta)
    print(json.dumps(meta, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
