"""Benchmark: native ``account.dunning.generate_dunnings`` against our
``account.dunning.run.execute`` on the same generated data.

Each side runs on its own fresh copy of the template ``bench_tpl_<N>``
(``CREATE DATABASE ... TEMPLATE``), in its own child process started with the
same interpreter flags as this one, so the peak RSS is measured per side.

Usage: python -O bench/run.py [--n N] [--ours-only] [--date YYYY-MM-DD]
                              [--regenerate] [--keep]
"""
import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import generate  # noqa: E402

RESULT_TAG = 'BENCH-RESULT '
RUN_MODEL = 'account.dunning.run'
COUNTED_MODELS = (
    # (label, model): rows counted after the run when the model exists
    ('dunnings', 'account.dunning'),
    ('outbox', 'account.dunning.message'),
    ('audit', 'account.dunning.audit'),
    )


def interpreter_flags():
    return ['-' + 'O' * sys.flags.optimize] if sys.flags.optimize else []


def cpu_seconds():
    "CPU of this process and of the processes it waited for (a split run)"
    import resource
    return sum(usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN)))


def peak_rss_mb():
    import resource
    # Linux: ru_maxrss is in kilobytes; for children, the largest one's
    return max(resource.getrusage(who).ru_maxrss
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


# --------------------------------------------------------------------------
# Child: one side on one database
# --------------------------------------------------------------------------
def child(side, dbname, date, company_id, profile=False):
    # before any trytond import: the configuration is read at import time
    os.environ['TRYTOND_CONFIG'] = str(common.ensure_config())
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    result = {
        'side': side,
        'optimize': sys.flags.optimize,
        'pid': os.getpid(),
        }

    def emit():
        result['peak_rss_mb'] = round(peak_rss_mb(), 1)
        print(RESULT_TAG + json.dumps(result), flush=True)

    t0 = time.perf_counter()
    pool = Pool(dbname)
    pool.init()
    result['pool_init_s'] = round(time.perf_counter() - t0, 2)
    result['rss_after_init_mb'] = round(peak_rss_mb(), 1)

    if side == 'ours':
        try:
            Run = pool.get(RUN_MODEL)
        except KeyError:
            result['skipped'] = (
                f"model {RUN_MODEL!r} is not registered in the pool "
                "(dunning_advanced not activated or Run not registered)")
            emit()
            return
        if not callable(getattr(Run, 'execute', None)):
            result['skipped'] = f"{RUN_MODEL}.execute does not exist"
            emit()
            return

    with Transaction().start(
            dbname, 0, context={'company': company_id}) as transaction:
        if profile:
            import cProfile
            profiler = cProfile.Profile()
        load_before = os.getloadavg()[0]
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        if profile:
            profiler.enable()
        if side == 'native':
            Dunning = pool.get('account.dunning')
            Dunning.generate_dunnings(date)
            transaction.commit()
        else:
            run = Run.execute(date, send=False)
            transaction.commit()
        result['seconds'] = time.perf_counter() - t0
        if profile:
            profiler.disable()
            import io
            import pstats
            path = common.VAR / f'profile_{side}_{dbname}.pstats'
            profiler.dump_stats(str(path))
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(
                'cumulative').print_stats(30)
            result['profile'] = str(path)
            print(out.getvalue(), file=sys.stderr)
        result['cpu_s'] = round(cpu_seconds() - c0, 2)
        result['loadavg'] = [round(load_before, 2),
            round(os.getloadavg()[0], 2)]
        if side == 'ours' and run is not None:
            counters = {}
            for name, field in Run._fields.items():
                if field._type in {'integer', 'char', 'selection'} and (
                        name not in {'id', 'create_uid', 'write_uid'}):
                    counters[name] = getattr(run, name, None)
            result['run_record'] = counters

    # Rows actually in the database after the run
    with Transaction().start(dbname, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        counts = {}
        for label, model in COUNTED_MODELS:
            try:
                Model = pool.get(model)
            except KeyError:
                continue
            cursor.execute(f'SELECT COUNT(*) FROM "{Model._table}"')
            counts[label] = cursor.fetchone()[0]
        result['rows'] = counts
    emit()


# --------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------
def create_copy(template, name):
    from psycopg import sql
    with common.admin_connect() as conn:
        common.drop_database(conn, name)
        t0 = time.perf_counter()
        conn.execute(sql.SQL(
                'CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY').format(
                sql.Identifier(name), sql.Identifier(template)))
        return time.perf_counter() - t0


def run_side(side, n, template, date, company_id, keep=False,
        profile=False):
    dbname = f'bench_run_{side}_{n}'
    copy_s = create_copy(template, dbname)
    print(f"{side}: fresh copy {dbname} of {template} in {copy_s:.1f} s",
        flush=True)
    cmd = [sys.executable, *interpreter_flags(), __file__,
        '--child', side, '--db', dbname, '--date', date.isoformat(),
        '--company', str(company_id)] + (['--profile'] if profile else [])
    print(f"{side}: $ {' '.join(cmd)}", flush=True)
    try:
        proc = subprocess.run(cmd, env=common.trytond_env(),
            capture_output=True, text=True)
    finally:
        if not keep:
            with common.admin_connect() as conn:
                common.drop_database(conn, dbname)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
    if profile and proc.stderr:
        print(proc.stderr, flush=True)
    if proc.returncode != 0 or result is None:
        tail = (proc.stderr or proc.stdout)[-3000:]
        return {'side': side, 'error': f"child exited {proc.returncode}",
            'stderr': tail}
    return result


def print_side(result):
    side = result['side']
    if 'error' in result:
        print(f"{side}: FAILED ({result['error']})\n{result['stderr']}",
            flush=True)
        return
    if 'skipped' in result:
        print(f"{side}: SKIPPED: {result['skipped']}", flush=True)
        return
    rows = ', '.join(f"{k} {v}" for k, v in result['rows'].items())
    print(f"{side}: {result['seconds']:.1f} s, rows after run: {rows}, "
        f"peak RSS {result['peak_rss_mb']:.0f} MB "
        f"(after pool init {result['rss_after_init_mb']:.0f} MB, "
        f"pool init {result['pool_init_s']:.1f} s, "
        f"child sys.flags.optimize={result['optimize']})", flush=True)
    print(f"{side}: python CPU {result['cpu_s']:.1f} s in "
        f"{result['seconds']:.1f} s wall (this process and those it forked; "
        f"PostgreSQL's CPU is not in it); 1-min load average {result['loadavg'][0]} before, "
        f"{result['loadavg'][1]} after on {os.cpu_count()} CPUs", flush=True)
    if result.get('run_record'):
        print(f"{side}: run record: "
            + ', '.join(f"{k}={v}" for k, v in result['run_record'].items()),
            flush=True)


def ok(result):
    return result is not None and 'seconds' in result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=10_000,
        help="number of open receivable lines (default: %(default)s)")
    parser.add_argument('--ours-only', action='store_true',
        help="skip the native side (for N=1,000,000)")
    parser.add_argument('--date', type=dt.date.fromisoformat,
        default=dt.date.today(), help="dunning date (default: today)")
    parser.add_argument('--regenerate', action='store_true',
        help="rebuild the template even if it exists")
    parser.add_argument('--keep', action='store_true',
        help="keep the per-side databases for inspection")
    parser.add_argument('--profile', action='store_true',
        help="profile the timed call of each side with cProfile (slower; "
        "stats in var/bench/, top 30 printed); not for the figures")
    parser.add_argument('--child', choices=['native', 'ours'],
        help=argparse.SUPPRESS)
    parser.add_argument('--db', help=argparse.SUPPRESS)
    parser.add_argument('--company', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child(args.child, args.db, args.date, args.company,
            profile=args.profile)
        return 0

    n = args.n
    print(f"bench: N={n}, date {args.date}, python {sys.version.split()[0]}, "
        f"sys.flags.optimize={sys.flags.optimize} "
        f"(both sides run as: {sys.executable} {' '.join(interpreter_flags())})",
        flush=True)
    if not sys.flags.optimize:
        print("bench: WARNING: not running under python -O", flush=True)

    ours_error = None
    t0 = time.perf_counter()
    try:
        meta = generate.ensure_template(n, regenerate=args.regenerate,
            base_date=args.date)
        meta = generate.refresh_module(n, meta)
    except RuntimeError as exception:
        ours_error = (f"{generate.OUR_MODULE} could not be activated: "
            + str(exception).splitlines()[0])
        print(f"bench: {exception}", flush=True)
        if args.ours_only:
            print(f"ours: SKIPPED: {ours_error}")
            return 2
        print(f"bench: {ours_error}; falling back to a native-only template",
            flush=True)
        meta = generate.ensure_template(n, regenerate=False,
            base_date=args.date, modules=generate.native_modules())
    generation_s = time.perf_counter() - t0
    template = common.template_name(n)
    print(f"bench: template {template} ready ({generation_s:.1f} s here; "
        f"N={meta['n']} lines, {meta['parties']} parties, base date "
        f"{meta['base_date']}, generated {meta['generated_at']} in "
        f"{meta['seconds']['total']:.1f} s)", flush=True)
    habits = meta.get('paid_habits') or {}
    print(f"bench: paid history: {meta.get('paid_invoices', 0)} invoices "
        f"paid in the {meta.get('paid_history_days', 365)} days before "
        f"{meta['base_date']} (parties by habit: "
        + (', '.join(f"{k} {v}" for k, v in habits.items()) or 'none')
        + ')', flush=True)
    if meta['base_date'] != args.date.isoformat():
        print(f"bench: note: maturities are spread around the template base "
            f"date {meta['base_date']}, the run date is {args.date} "
            f"(use --regenerate to rebuild around the run date)", flush=True)

    native = None
    if not args.ours_only:
        native = run_side('native', n, template, args.date, meta['company'],
            keep=args.keep, profile=args.profile)
        print_side(native)
    if ours_error:
        ours = {'side': 'ours', 'skipped': ours_error}
    else:
        ours = run_side('ours', n, template, args.date, meta['company'],
            keep=args.keep, profile=args.profile)
    print_side(ours)

    if args.ours_only:
        if ok(ours):
            print(f"ours: {ours['seconds']:.1f} s, N={n}, "
                f"peak RSS {ours['peak_rss_mb']:.0f} MB")
            return 0
        print(f"ours: NOT RUN ({ours.get('skipped') or ours.get('error')}), "
            f"N={n}")
        return 2
    if ok(native) and ok(ours):
        a, b = ours['seconds'], native['seconds']
        print(f"speedup: {b / a:.1f}x (ours {a:.1f} s, native {b:.1f} s, "
            f"N={n})")
        return 0
    native_s = f"{native['seconds']:.1f} s" if ok(native) else 'not run'
    reason = (ours.get('skipped') or ours.get('error')) if not ok(ours) \
        else (native.get('skipped') or native.get('error'))
    print(f"speedup: n/a -- not both sides ran ({reason}); "
        f"native {native_s}, N={n}")
    return 2


if __name__ == '__main__':
    sys.exit(main())
