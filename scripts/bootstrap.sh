#!/usr/bin/env bash
# Bring a Debian 12 machine (or container) to the point where `make test` / `make demo` can run:
#   1. system packages (PostGIS, pgRouting, GDAL, Redis, Chromium, OSM tools),
#   2. the Python virtualenv: the locked dependencies (requirements/dev.txt), then the project,
#   3. the services themselves (scripts/ensure_services.sh).
# Idempotent, and fast on the second run: each step checks before it acts.
#
# Environment:
#   VENV=.venv            where the virtualenv lives (relative to the repo root, or absolute)
#   SKIP_SERVICES=1       stop after step 2 (e.g. for `make lint`)
#   DATABASE_URL / REDIS_URL   see scripts/ensure_services.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"

log() { printf '[bootstrap] %s\n' "$*"; }
warn() { printf '[bootstrap] WARNING: %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

# True when a service URL points at this machine (or is unset, i.e. the local default):
# only then do we need the server package installed locally.
is_local_url() {
    local host
    host="$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname or "")' "$1")"
    case "$host" in "" | 127.0.0.1 | localhost | ::1 | %2f* | /*) return 0 ;; *) return 1 ;; esac
}

# --------------------------------------------------------------------------------------------
# 1. System packages
# --------------------------------------------------------------------------------------------
# GDAL is needed by GeoDjango in-process, always. The PostGIS and Redis servers only when the
# services run here (a Docker user points DATABASE_URL / REDIS_URL at the compose services).
# python3-venv: Debian's python3 cannot create a venv without it.
# Remote services still need the clients (psql, pg_isready, redis-cli) for ensure_services.sh.
REQUIRED=(gdal-bin libgdal-dev python3-venv)
# Nice to have: headless browser for UI tests, OSM import tools, routing extension (local DB),
# Node's npm for the browser tests' axe-core (package.json), gettext to re-make translations.
OPTIONAL=(chromium osmium-tool osm2pgrouting npm gettext)
if is_local_url "${DATABASE_URL:-postgis://127.0.0.1/}"; then
    REQUIRED+=(postgresql-15-postgis-3)
    OPTIONAL+=(postgresql-15-pgrouting)
elif ! command -v psql >/dev/null 2>&1; then
    REQUIRED+=(postgresql-client)
fi
if is_local_url "${REDIS_URL:-redis://127.0.0.1/}"; then
    REQUIRED+=(redis-server)
elif ! command -v redis-cli >/dev/null 2>&1; then
    REQUIRED+=(redis-tools)
fi

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
# A package apt knows about and could install (after `apt-get update`).
# (Not `apt-cache ... | grep -q`: under pipefail grep's early exit makes apt-cache die of
# SIGPIPE and the pipeline "fail" whenever the output is long enough.)
is_available() {
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null || true)"
    grep -q '^  Candidate: [^(]' <<<"$policy"
}
contains() { local x="$1"; shift; local y; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }

install_system_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        warn "not a Debian-like system (no dpkg-query): install PostGIS 3, pgRouting, GDAL and Redis yourself"
        return 0
    fi
    local missing=() p
    for p in "${REQUIRED[@]}" "${OPTIONAL[@]}"; do
        is_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "system packages: all present"
        return 0
    fi

    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        local req_missing=()
        for p in "${missing[@]}"; do contains "$p" "${REQUIRED[@]}" && req_missing+=("$p"); done
        warn "missing system packages: ${missing[*]}"
        warn "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
        [ "${#req_missing[@]}" -eq 0 ] || die "required packages missing (not root, cannot install): ${req_missing[*]}"
        return 0
    fi

    export DEBIAN_FRONTEND=noninteractive
    # `apt-get update` only when it can change the answer: no package lists, a required
    # package the lists do not offer, or an optional one and the lists are over a day old.
    # Otherwise an optional package this mirror lacks would cost an update on every run.
    local updated=0 need_update=0
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ]; then
        need_update=1
    fi
    local fresh
    fresh="$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null || true)"
    for p in "${missing[@]}"; do
        is_available "$p" && continue
        if contains "$p" "${REQUIRED[@]}" || [ -z "$fresh" ]; then need_update=1; fi
    done
    if [ "$need_update" = 1 ]; then
        log "apt-get update"
        apt-get update -qq
        updated=1
    fi

    local installable=()
    for p in "${missing[@]}"; do
        if is_available "$p"; then
            installable+=("$p")
        elif contains "$p" "${REQUIRED[@]}"; then
            die "required package '$p' is not available from apt (check /etc/apt/sources.list; PostGIS/pgRouting may need apt.postgresql.org)"
        else
            warn "optional package '$p' is not available from apt; skipping"
        fi
    done
    [ "${#installable[@]}" -gt 0 ] || return 0

    log "installing system packages: ${installable[*]}"
    if apt-get install -y --no-install-recommends "${installable[@]}"; then
        return 0
    fi
    # Stale package lists (404s) or one broken optional package: refresh once, then go one by
    # one so the optional ones cannot block the required ones.
    warn "apt-get install failed; retrying package by package"
    [ "$updated" = 1 ] || apt-get update -qq
    for p in "${installable[@]}"; do
        apt-get install -y --no-install-recommends "$p" && continue
        contains "$p" "${REQUIRED[@]}" && die "could not install required package '$p'"
        warn "could not install optional package '$p'; continuing"
    done
}

# --------------------------------------------------------------------------------------------
# 2. Python virtualenv
# --------------------------------------------------------------------------------------------
setup_python() {
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python >= 3.11 required, found $(python3 --version 2>&1)"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv in $VENV"
        python3 -m venv "$VENV"
    fi
    # The stamp is keyed on the lock and pyproject.toml: a dependency change (or a re-lock)
    # re-runs pip, nothing else does.
    local lock=requirements/dev.txt sum stamp
    [ -f "$lock" ] || die "$lock is missing: run \`make lock\`"
    sum="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
    stamp="$VENV/.installed-$sum"
    if [ -f "$stamp" ]; then
        log "python dependencies: up to date ($VENV)"
        return 0
    fi
    # Exactly the locked versions, each file checked against the lock's hashes (docs/SECURITY.md,
    # "Supply chain"); then the project itself, whose dependencies the lock already holds.
    log "installing the locked dependencies ($lock) and the project into $VENV"
    "$VENV/bin/pip" install --require-hashes -r "$lock"
    "$VENV/bin/pip" install --no-deps -e .
    rm -f "$VENV"/.installed-*
    touch "$stamp"
}

# --------------------------------------------------------------------------------------------
# 3. Browser-test tools (package.json: axe-core, injected by tests/e2e from node_modules/)
# --------------------------------------------------------------------------------------------
setup_node() {
    if [ ! -f package-lock.json ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        warn "npm not found: the accessibility checks of tests/e2e will fail (install npm)"
        return 0
    fi
    local sum stamp
    sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
    stamp="node_modules/.installed-$sum"
    if [ -f "$stamp" ]; then
        log "node packages: up to date"
        return 0
    fi
    log "installing node packages (npm ci)"
    npm ci --no-audit --no-fund
    touch "$stamp"
}

install_system_packages
setup_python
setup_node

if [ "${SKIP_SERVICES:-0}" = "1" ]; then
    log "SKIP_SERVICES=1: not checking PostgreSQL / Redis"
else
    bash "$ROOT/scripts/ensure_services.sh"
fi
log "done"
