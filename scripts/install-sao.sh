#!/usr/bin/env bash
# Install sao, the Tryton web client, as a self-contained folder.
#
# Usage: scripts/install-sao.sh [TARGET_DIR]
#   TARGET_DIR   where to install (default: <repo>/var/sao); the Dockerfile
#                uses /opt/sao.
#   SAO_VERSION  npm version of tryton-sao (default: 8.0.11, matching the
#                trytond 8.0 series used by this project).
#
# The npm tarball already contains the built dist/ (tryton-sao.js/.css); we
# only have to install its runtime dependencies (jquery, bootstrap, d3, ...)
# into TARGET_DIR/node_modules, which index.html loads by relative path.
# Idempotent: does nothing when TARGET_DIR already holds a complete install
# of the requested version.
set -euo pipefail

SAO_VERSION="${SAO_VERSION:-8.0.11}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-$repo_root/var/sao}"

log() { echo "install-sao: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v npm >/dev/null || die "npm not found (node/npm are needed to install sao)"
command -v node >/dev/null || die "node not found"

# Print the version recorded in DIR/package.json, or nothing.
installed_version() {
    [ -f "$1/package.json" ] || return 0
    node -e 'try { process.stdout.write(require(process.argv[1]).version || "") } catch (e) {}' \
        "$(cd "$1" && pwd)/package.json"
}

# Verify that DIR is a usable sao: right version, dist/ built, and every
# local script/stylesheet referenced by index.html exists on disk (that is
# what the browser will request when loading the page).
check_sao() {
    local dir="$1" quiet="${2:-}"
    local fail=0
    _fail() { [ -n "$quiet" ] || log "check failed: $*"; fail=1; }
    [ -f "$dir/index.html" ] || _fail "$dir/index.html missing"
    [ -d "$dir/node_modules" ] || _fail "$dir/node_modules missing"
    [ -f "$dir/dist/tryton-sao.js" ] || _fail "$dir/dist/tryton-sao.js missing"
    [ -f "$dir/dist/tryton-sao.css" ] || _fail "$dir/dist/tryton-sao.css missing"
    local v
    v="$(installed_version "$dir")"
    [ "$v" = "$SAO_VERSION" ] || _fail "version '${v:-none}' != '$SAO_VERSION'"
    [ "$fail" -eq 0 ] || return 1
    local missing
    missing="$(node - "$dir" <<'EOF'
const fs = require('fs'), path = require('path');
const dir = process.argv[2];
const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
const re = /\b(?:src|href)\s*=\s*["']([^"'#?]+)[^"']*["']/g;
let m, n = 0;
const missing = [];
while ((m = re.exec(html)) !== null) {
    const ref = m[1];
    if (/^[a-z]+:|^\/\//i.test(ref)) continue;  // absolute URL
    // custom.js/custom.css are optional site customisation hooks that sao
    // does not ship; a 404 for them is expected and harmless.
    if (ref === 'custom.js' || ref === 'custom.css') continue;
    n++;
    if (!fs.existsSync(path.join(dir, ref))) missing.push(ref);
}
if (n === 0) missing.push('(index.html references no local assets?)');
process.stdout.write(missing.join('\n'));
EOF
)"
    if [ -n "$missing" ]; then
        _fail "assets referenced by index.html are missing:"$'\n'"$missing"
        return 1
    fi
    return 0
}

if check_sao "$target" quiet; then
    log "tryton-sao $SAO_VERSION already installed in $target"
    exit 0
fi

log "installing tryton-sao@$SAO_VERSION into $target"
mkdir -p "$(dirname "$target")"
tmp="$(mktemp -d "$(dirname "$target")/.sao-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "npm pack tryton-sao@$SAO_VERSION"
(cd "$tmp" && npm pack --silent "tryton-sao@$SAO_VERSION" >/dev/null)
tarball="$tmp/tryton-sao-$SAO_VERSION.tgz"
[ -f "$tarball" ] || die "npm pack did not produce $tarball"
tar -xzf "$tarball" -C "$tmp"
[ -d "$tmp/package" ] || die "unexpected tarball layout (no package/)"

# --legacy-peer-deps: sao's dependency tree has a peer-dependency conflict
# that npm >= 7 refuses to resolve otherwise.
log "npm install --omit=dev --legacy-peer-deps (in $tmp/package)"
(cd "$tmp/package" \
    && npm install --omit=dev --legacy-peer-deps --no-audit --no-fund \
        --loglevel=error >&2)

check_sao "$tmp/package" || die "fresh install of tryton-sao@$SAO_VERSION is incomplete"

# Swap into place only once complete, so an interrupted run never leaves a
# half-installed var/sao that the idempotency check would accept.
rm -rf "$target"
mv "$tmp/package" "$target"
log "tryton-sao $SAO_VERSION installed in $target"
