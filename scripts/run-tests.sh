#!/usr/bin/env bash
# Run the project's test suites against one database backend.
#
# Usage: scripts/run-tests.sh [sqlite|postgresql]     (default: sqlite)
#
# Parts (each one runs even if an earlier one failed):
#   pytest  our own tests: tests/, addons/dunning_advanced/tests/ and
#           addons/dunning_sms/tests/ and addons/dunning_portal/tests/
#   tryton  Tryton's own test suites of the standard modules we build on,
#           unchanged, run with unittest so that their scenario_*.rst
#           doctests (collected by load_tests) are included; on PostgreSQL
#           beside the pytest part, on a database of its own
#
# The last line printed is always "N passed, M failed" (N, M count parts);
# the exit status is non-zero if any part failed.
#
# Environment knobs:
#   VENV          virtualenv to use (default: <repo>/.venv)
#   PART_TIMEOUT  max seconds per part (default: 3300)
#   STANDARD_SUITES  0 skips the part 'tryton' (default: 1); CI runs Tryton's
#                 suites on SQLite only
#   PGHOST_TEST, PGPORT_TEST, PGUSER_TEST   PostgreSQL server for the
#                 postgresql backend (default: 127.0.0.1, 5432, postgres)
#
# PostgreSQL runs use throw-away databases test_dunning_<pid> (and
# test_dunning_<pid>_standard for Tryton's suites) plus Tryton's
# template cache databases test-<hash>, all dropped at the end; concurrent
# PostgreSQL runs against the same server wait for each other (flock on
# ${TMPDIR:-/tmp}/tryton-dunning-tests-<host>-<port>.lock).
set -uo pipefail

DB="${1:-sqlite}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

VENV="${VENV:-$repo_root/.venv}"
PY="$VENV/bin/python"
PART_TIMEOUT="${PART_TIMEOUT:-3300}"
STANDARD_SUITES="${STANDARD_SUITES:-1}"

# Our own test directories (missing ones are skipped).
PYTEST_DIRS=(tests addons/dunning_advanced/tests addons/dunning_sms/tests
    addons/dunning_portal/tests)
# Standard Tryton modules whose own suites must keep passing with our module
# installed alongside.
TRYTON_MODULES=(
    account_dunning
    account_dunning_email
    account_dunning_fee
    account_dunning_letter
    account_credit_limit
    sale_credit_limit
    web_user
    account_payment_stripe
    account_payment_clearing
)

log() { echo "run-tests: $*" >&2; }

if [ ! -x "$PY" ]; then
    log "ERROR: $PY not found; run 'make venv' first"
    echo "0 passed, 1 failed"
    exit 1
fi

# Tests must not pick up a production configuration, nor any TRYTOND_*
# override (e.g. TRYTOND_DATABASE__URI) from the caller's environment.
unset TRYTOND_CONFIG
for name in $(compgen -e); do
    case "$name" in TRYTOND_*) unset "$name" ;; esac
done
unset DB_CACHE DB_NAME

cleanup_done=0
cleanup() { cleanup_done=1; }

case "$DB" in
sqlite)
    export TRYTOND_DATABASE_URI='sqlite://'
    export DB_NAME=':memory:'
    # Tryton caches each freshly set-up test database (one per list of
    # activated modules) in DB_CACHE and restores it for later test classes.
    # The cache is keyed only by the module names, so a change to our module
    # (new field, new XML record), to the tests' world or to an installed
    # Tryton version would be served a stale database: key the directory by
    # a fingerprint of them.
    fingerprint="$("$PY" - <<'EOF'
import hashlib, importlib.metadata as md, pathlib
h = hashlib.sha256()
for dist in sorted(md.distributions(), key=lambda d: d.metadata['Name'].lower()):
    name = dist.metadata['Name'].lower()
    if name.startswith(('trytond', 'tryton-', 'proteus', 'python-sql')):
        h.update(f'{name}=={dist.version}\n'.encode())
# The tests' world is built once and kept in the cache too.
paths = [p for p in sorted(pathlib.Path('addons').rglob('*'))
    if p.is_file() and '__pycache__' not in p.parts]
for path in paths + [pathlib.Path('tests/conftest.py')]:
    h.update(str(path).encode() + b'\0' + path.read_bytes() + b'\0')
print(h.hexdigest()[:16])
EOF
)" || { log "ERROR: cannot compute cache fingerprint"; fingerprint=nocache; }
    cache_root="$repo_root/var/cache/sqlite"
    export DB_CACHE="$cache_root/$fingerprint"
    mkdir -p "$DB_CACHE"
    # Keep only the cache matching the current tree.
    find "$cache_root" -mindepth 1 -maxdepth 1 -type d \
        ! -name "$fingerprint" -exec rm -rf {} + 2>/dev/null || true
    ;;
postgresql)
    pg_host="${PGHOST_TEST:-127.0.0.1}"
    pg_port="${PGPORT_TEST:-5432}"
    pg_user="${PGUSER_TEST:-postgres}"
    export TRYTOND_DATABASE_URI="postgresql://${pg_user}@${pg_host}:${pg_port}/"
    export DB_NAME="test_dunning_$$"
    standard_db_name="${DB_NAME}_standard"
    # Tryton's own test cache: every freshly activated database is kept as a
    # template database named "test-<40 hex>" and cloned (CREATE DATABASE
    # ... TEMPLATE) by later tests activating the same modules. Without it
    # each end-to-end test re-activates dunning_advanced from scratch and the
    # PostgreSQL run takes well over 25 minutes. (A file cache, DB_CACHE=dir,
    # does not work for tests that call tools.activate_modules() while the
    # database still exists: pg_restore's CREATE DATABASE then fails.)
    # The template names are not per run and not per code version, so:
    # runs against one server are serialised with a lock, and the templates
    # are dropped before (possibly stale) and after (throw-away) the run.
    export DB_CACHE='postgresql://'
    psql_admin() {
        PGOPTIONS='-c client_min_messages=warning' \
            psql -X -q -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres \
            -v ON_ERROR_STOP=1 -c "$1" >/dev/null
    }
    drop_cache_dbs() {
        local name
        for name in $(psql -X -At -h "$pg_host" -p "$pg_port" -U "$pg_user" \
                -d postgres -c "SELECT datname FROM pg_database
                    WHERE datname ~ '^test-[0-9a-f]{40}\$'"); do
            psql_admin "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" \
                || log "WARNING: could not drop cache database $name"
        done
    }
    cleanup() {
        [ "$cleanup_done" = 1 ] && return 0
        cleanup_done=1
        log "dropping databases $DB_NAME, $standard_db_name and Tryton's test-<hash> cache databases"
        local name
        for name in "$DB_NAME" "$standard_db_name"; do
            psql_admin "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" \
                || log "WARNING: could not drop database $name"
        done
        drop_cache_dbs
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # The database is NOT created here: Tryton's test framework only
    # recognises databases it initialised itself (PostgreSQL's list() keeps
    # those with Tryton tables), so a pre-created empty database makes every
    # test class fail with DuplicateDatabase. We only reserve the name, make
    # sure it is free, and drop whatever is left of it on exit.
    log "checking PostgreSQL on $pg_host:$pg_port and reserving database $DB_NAME"
    if ! psql_admin "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)"; then
        log "ERROR: cannot reach PostgreSQL on $pg_host:$pg_port as $pg_user"
        cleanup_done=1
        echo "0 passed, 1 failed"
        exit 1
    fi
    lock_file="${TMPDIR:-/tmp}/tryton-dunning-tests-${pg_host}-${pg_port}.lock"
    exec {lock_fd}>"$lock_file"
    if ! flock -n "$lock_fd"; then
        log "another PostgreSQL test run holds $lock_file; waiting for it"
        flock "$lock_fd"
    fi
    drop_cache_dbs
    ;;
*)
    log "ERROR: unknown backend '$DB' (expected sqlite or postgresql)"
    echo "0 passed, 1 failed"
    exit 2
    ;;
esac

log "backend=$DB TRYTOND_DATABASE_URI=$TRYTOND_DATABASE_URI DB_NAME=$DB_NAME DB_CACHE=${DB_CACHE:-<unset>}"

# One line per finished part, "PASS|FAIL  name (...)": a part run in the
# background writes its line too.
results_file="$(mktemp)"

# run_part NAME COMMAND...: run with a time limit, record the outcome.
run_part() {
    local name="$1"; shift
    log "---- part '$name': $*"
    local start=$SECONDS rc
    # --foreground keeps the tests in our process group so Ctrl-C reaches
    # them; on timeout they get SIGTERM, then SIGKILL 30s later.
    timeout --foreground -k 30 "$PART_TIMEOUT" "$@"
    rc=$?
    local elapsed=$((SECONDS - start))
    if [ "$rc" -eq 0 ]; then
        echo "PASS  $name (${elapsed}s)" >> "$results_file"
    else
        local why="exit $rc"
        [ "$rc" -eq 124 ] && why="timed out after ${PART_TIMEOUT}s"
        [ "$rc" -eq 5 ] && why="exit 5: no tests collected"
        echo "FAIL  $name (${elapsed}s, $why)" >> "$results_file"
    fi
    log "---- part '$name' finished: rc=$rc in ${elapsed}s"
}

# Part 'tryton': Tryton's own suites. "python -m unittest
# trytond.modules.X.tests" would load only the (empty) tests/__init__.py and
# run 0 tests, so name the test_*.py modules explicitly; their load_tests
# hooks add the scenario .rst doctests.
standard_pid=""
if [ "$STANDARD_SUITES" = 0 ]; then
    log "---- part 'tryton' skipped (STANDARD_SUITES=0)"
elif tryton_tests="$("$PY" - "${TRYTON_MODULES[@]}" <<'EOF'
import importlib.util, pathlib, sys
names = []
for module in sys.argv[1:]:
    package = f'trytond.modules.{module}.tests'
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f'no test package {package}')
    found = [
        f'{package}.{path.stem}'
        for location in spec.submodule_search_locations
        for path in sorted(pathlib.Path(location).glob('test_*.py'))]
    if not found:
        sys.exit(f'no test_*.py in {package}')
    names.extend(found)
print(' '.join(names))
EOF
)"; then
    if [ "$DB" = postgresql ]; then
        # Beside the pytest part, on a database of their own, their output
        # kept apart and shown after it: the server does much of the work,
        # so two parts at once end sooner than one after the other.
        standard_log="$(mktemp)"
        # shellcheck disable=SC2086
        DB_NAME="$standard_db_name" run_part tryton \
            "$PY" -m unittest $tryton_tests > "$standard_log" 2>&1 &
        standard_pid=$!
    else
        # shellcheck disable=SC2086
        run_part tryton "$PY" -m unittest $tryton_tests
    fi
else
    log "ERROR: cannot locate Tryton's test modules"
    echo "FAIL  tryton (test modules not found)" >> "$results_file"
fi

# Parts 'pytest' and, on SQLite, 'pytest-live': our own tests. Exit code 5
# (nothing collected) counts as a failure like any other non-zero code.
dirs=()
for d in "${PYTEST_DIRS[@]}"; do
    if [ -d "$d" ]; then dirs+=("$d"); else log "skipping missing $d"; fi
done
if [ "${#dirs[@]}" -gt 0 ] && [ "$DB" = sqlite ]; then
    run_part pytest "$PY" -m pytest -q -p no:cacheprovider --durations=15 \
        -m 'not live_server' "${dirs[@]}"
    # The portal's server threads share a database file, not memory.
    live_path="$(mktemp -d)"
    run_part pytest-live env TRYTOND_DATABASE__PATH="$live_path" \
        DB_NAME=test_live "$PY" -m pytest -q -p no:cacheprovider --durations=15 \
        -m live_server "${dirs[@]}"
    rm -rf "$live_path"
elif [ "${#dirs[@]}" -gt 0 ]; then
    run_part pytest "$PY" -m pytest -q -p no:cacheprovider --durations=15 "${dirs[@]}"
else
    log "no pytest directories exist"
    echo "FAIL  pytest (no test directories)" >> "$results_file"
fi

if [ -n "$standard_pid" ]; then
    wait "$standard_pid"
    cat "$standard_log"
    rm -f "$standard_log"
fi

cleanup

passed="$(grep -c '^PASS' "$results_file")"
failed="$(grep -c '^FAIL' "$results_file")"
log "==== results ($DB)"
while read -r result; do log "  $result"; done < "$results_file"
rm -f "$results_file"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
