"""Shared settings and small helpers for the dunning benchmark."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / 'var' / 'bench'
CONFIG_FILE = VAR / 'trytond.conf'
PASS_FILE = VAR / 'passfile'
VENV_BIN = ROOT / '.venv' / 'bin'

PG_URI = os.environ.get(
    'BENCH_PG_URI', 'postgresql://postgres@127.0.0.1:5432/')


def template_name(n):
    return f'bench_tpl_{n}'


def dsn(dbname):
    return PG_URI.rstrip('/') + '/' + dbname


def ensure_config():
    """Write the small trytond configuration and password file."""
    VAR.mkdir(parents=True, exist_ok=True)
    content = f"[database]\nuri = {PG_URI}\n"
    if not CONFIG_FILE.exists() or CONFIG_FILE.read_text() != content:
        CONFIG_FILE.write_text(content)
    if not PASS_FILE.exists():
        PASS_FILE.write_text('admin\n')
    return CONFIG_FILE


def trytond_env():
    env = dict(os.environ)
    env['TRYTOND_CONFIG'] = str(ensure_config())
    env['TRYTONPASSFILE'] = str(PASS_FILE)
    return env


def admin_connect(autocommit=True):
    import psycopg
    return psycopg.connect(dsn('postgres'), autocommit=autocommit)


def database_exists(conn, name):
    return conn.execute(
        'SELECT 1 FROM pg_database WHERE datname = %s', (name,)
        ).fetchone() is not None


def drop_database(conn, name):
    from psycopg import sql
    conn.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(
            sql.Identifier(name)))


def run(cmd, env=None, **kwargs):
    """Run a command, echo it, raise with its output on failure."""
    print('  $', ' '.join(str(c) for c in cmd), flush=True)
    proc = subprocess.run(
        [str(c) for c in cmd], env=env, capture_output=True, text=True,
        **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n"
            f"--- stderr ---\n{proc.stderr[-4000:]}")
    return proc
