#!/usr/bin/env bash
# Make sure PostgreSQL (+PostGIS, +pgRouting) and Redis answer, starting the local ones if needed,
# and that the application database exists with its extensions. Idempotent.
#
# Environment (same variables Django reads, same defaults as control_tower/settings.py):
#   DATABASE_URL  default postgis://postgres@127.0.0.1:5432/control_tower
#   REDIS_URL     default redis://127.0.0.1:6379/0
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATABASE_URL="${DATABASE_URL:-postgis://postgres@127.0.0.1:5432/control_tower}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}"

log() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }

docker_hint() {
    cat >&2 <<'EOF'
[services] With Docker, start the services with:
    docker compose up -d db redis
    export DATABASE_URL=postgis://postgres:postgres@127.0.0.1:5432/control_tower REDIS_URL=redis://127.0.0.1:6379/0
EOF
}
die() { printf '[services] ERROR: %s\n' "$*" >&2; docker_hint; exit 1; }

# --------------------------------------------------------------------------------------------
# Parse both URLs once, in Python (quoting, percent-escapes, IPv6 and sockets are easy to get
# wrong in shell). Prints shell assignments, quoted with shlex.
# --------------------------------------------------------------------------------------------
parsed="$(python3 - "$DATABASE_URL" "$REDIS_URL" <<'PY'
import shlex
import sys
import urllib.parse as up

db, rd = up.urlsplit(sys.argv[1]), up.urlsplit(sys.argv[2])
if db.scheme not in ("postgis", "postgres", "postgresql", "pgsql"):
    sys.exit(f"DATABASE_URL: unsupported scheme {db.scheme!r} (expected postgis://)")
name = up.unquote(db.path.lstrip("/"))
if not name:
    sys.exit("DATABASE_URL has no database name")

def pg_url(dbname):
    # libpq understands postgresql:// only; keep credentials, host and query (sslmode...).
    return up.urlunsplit(("postgresql", db.netloc, "/" + up.quote(dbname), db.query, ""))

def local(host):
    return host in ("", "127.0.0.1", "localhost", "::1") or host.startswith("/")

db_host = up.unquote(db.hostname or "")
rd_host = rd.hostname or "127.0.0.1"
out = {
    "DB_HOST": db_host,
    "DB_PORT": db.port or 5432,
    "DB_USER": up.unquote(db.username or ""),
    "DB_NAME": name,
    "DB_URL": pg_url(name),
    "DB_ADMIN_URL": pg_url("postgres"),
    "DB_TEMPLATE_URL": pg_url("template1"),
    "DB_LOCAL": int(local(db_host)),
    "DB_SHOW": f"{db_host or 'local socket'}:{db.port or 5432}/{name}",
    "REDIS_HOST": rd_host,
    "REDIS_PORT": rd.port or 6379,
    "REDIS_LOCAL": int(local(rd_host)),
}
for key, value in out.items():
    print(f"{key}={shlex.quote(str(value))}")
PY
)" || die "cannot parse DATABASE_URL / REDIS_URL"
eval "$parsed"

# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------
pg_ready() {
    local args=(-q -t 3 -p "$DB_PORT")
    [ -z "$DB_HOST" ] || args+=(-h "$DB_HOST")
    pg_isready "${args[@]}"
}

# Start the local Debian cluster(s) listening on our port. No systemd in containers, hence
# --skip-systemctl-redirect.
start_local_postgres() {
    command -v pg_ctlcluster >/dev/null 2>&1 || return 0
    [ -n "$(ls /etc/postgresql 2>/dev/null)" ] || return 0
    local ver name port status rest
    while read -r ver name port status rest; do
        [ "$port" = "$DB_PORT" ] || continue
        [[ "$status" == online* ]] && continue
        log "starting PostgreSQL cluster $ver/$name"
        pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start \
            || warn "could not start cluster $ver/$name (are you root or postgres?)"
    done < <(pg_lsclusters -h 2>/dev/null || true)
}

# Run SQL from stdin against a connection URL; psql variables (-v) are interpolated there.
psql_do() {
    local url="$1"
    shift
    # client_min_messages: keep "extension already exists, skipping" notices out of the output.
    PGOPTIONS="--client-min-messages=warning" psql "$url" -X -q -w -tA -v ON_ERROR_STOP=1 "$@"
}

if ! pg_ready; then
    [ "$DB_LOCAL" = "1" ] || die "PostgreSQL at $DB_SHOW is not reachable"
    start_local_postgres
    for _ in $(seq 1 20); do
        pg_ready && break
        sleep 1
    done
    pg_ready || die "the database is not reachable at $DB_SHOW"
fi

# The application database.
exists="$(psql_do "$DB_ADMIN_URL" -v db="$DB_NAME" <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")" \
    || die "cannot connect to PostgreSQL at $DB_SHOW as '${DB_USER:-$(id -un)}' (check user/password in DATABASE_URL)"
if [ "$exists" != "1" ]; then
    log "creating database $DB_NAME"
    psql_do "$DB_ADMIN_URL" -v db="$DB_NAME" <<<'CREATE DATABASE :"db";' \
        || die "could not create database $DB_NAME (does '${DB_USER}' have CREATEDB?)"
fi

psql_do "$DB_URL" <<<'CREATE EXTENSION IF NOT EXISTS postgis;' \
    || die "could not enable PostGIS in $DB_NAME (package postgresql-15-postgis-3 installed? superuser needed)"
psql_do "$DB_URL" <<<'CREATE EXTENSION IF NOT EXISTS pgrouting;' 2>/dev/null \
    || warn "pgRouting is not available in $DB_NAME (install postgresql-15-pgrouting); routing falls back"

# The test database (pytest-django: test_<name>) is created from template1: giving template1 the
# extensions means tests get them even when Django itself would not create them (pgRouting).
is_super="$(psql_do "$DB_URL" <<<'SELECT rolsuper FROM pg_roles WHERE rolname = current_user;')"
if [ "$is_super" = "t" ]; then
    psql_do "$DB_TEMPLATE_URL" <<<'CREATE EXTENSION IF NOT EXISTS postgis;' \
        || warn "could not enable PostGIS in template1"
    psql_do "$DB_TEMPLATE_URL" <<<'CREATE EXTENSION IF NOT EXISTS pgrouting;' 2>/dev/null \
        || warn "could not enable pgRouting in template1"
else
    warn "'$DB_USER' is not a superuser: template1 left alone; the test database needs PostGIS some other way"
fi

versions="$(psql_do "$DB_URL" <<<"SELECT 'PostGIS ' || extversion FROM pg_extension WHERE extname = 'postgis'
    UNION ALL SELECT 'pgRouting ' || extversion FROM pg_extension WHERE extname = 'pgrouting';" | paste -sd, - | sed "s/,/, /g")"
log "OK postgres  $DB_SHOW ($versions)"

# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------
redis_ping() {
    [ "$(redis-cli --no-auth-warning -u "$REDIS_URL" ping 2>/dev/null || true)" = "PONG" ]
}

if ! redis_ping; then
    [ "$REDIS_LOCAL" = "1" ] || die "Redis at $REDIS_HOST:$REDIS_PORT is not reachable"
    command -v redis-server >/dev/null 2>&1 || die "Redis is not running and redis-server is not installed"
    # Debian's own dirs when we may write there (root), else inside the repo.
    data_dir=/var/lib/redis
    log_dir=/var/log/redis
    if ! mkdir -p "$data_dir" "$log_dir" 2>/dev/null || [ ! -w "$data_dir" ] || [ ! -w "$log_dir" ]; then
        data_dir="$ROOT/var/redis"
        log_dir="$ROOT/var/log"
        mkdir -p "$data_dir" "$log_dir"
    fi
    log "starting redis-server on 127.0.0.1:$REDIS_PORT (log $log_dir/ci.log)"
    # A cache/broker for dev and CI: no persistence, so nothing to clean up or corrupt.
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$data_dir" --logfile "$log_dir/ci.log" \
        || warn "redis-server failed to start"
    for _ in $(seq 1 10); do
        redis_ping && break
        sleep 1
    done
    redis_ping || die "Redis is not reachable at $REDIS_HOST:$REDIS_PORT"
fi
log "OK redis     $REDIS_HOST:$REDIS_PORT ($(redis-cli --no-auth-warning -u "$REDIS_URL" info server 2>/dev/null | tr -d '\r' | sed -n 's/^redis_version:/v/p'))"
