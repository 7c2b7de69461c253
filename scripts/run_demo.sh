#!/usr/bin/env bash
# Run the whole control tower locally: migrate, load the demo data, then web (uvicorn, ASGI),
# Celery worker and Celery beat in the background, logging to var/log/<name>.log.
# Assumes scripts/bootstrap.sh ran (`make demo` does both).
#
# Foreground (default): waits; Ctrl-C stops everything, and so does any process dying.
# DEMO_DETACH=1: returns once the web answers; stop later with `make stop` (scripts/stop_demo.sh).
#
# Environment: VENV (default .venv), HOST (default 127.0.0.1), PORT (default 8000),
# DEMO_HISTORY_DAYS (default 14), plus the
# variables Django reads (see .env.example).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
PY="$VENV/bin/python"
LOG_DIR=var/log

log() { printf '[demo] %s\n' "$*"; }
die() { printf '[demo] ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$PY" ] || die "no virtualenv at $VENV: run scripts/bootstrap.sh (or just: make demo)"
mkdir -p "$LOG_DIR"

# A wildcard bind address is not something a browser can open.
case "$HOST" in
    0.0.0.0 | "") URL_HOST=127.0.0.1 ;;
    :: | "[::]") URL_HOST="[::1]" ;;
    *:*) URL_HOST="[$HOST]" ;;
    *) URL_HOST="$HOST" ;;
esac
BASE="http://$URL_HOST:$PORT"

# HTTP status of a URL, 0 when nothing answers. Redirects are not followed: /healthz must be 200.
http_status() {
    "$PY" - "$1" <<'PY'
import sys
import urllib.request as rq

class NoRedirect(rq.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

try:
    code = rq.build_opener(NoRedirect).open(sys.argv[1], timeout=2).status
except rq.HTTPError as exc:
    code = exc.code
except Exception:
    code = 0
print(code)
PY
}

# Refuse to start twice: a second uvicorn would fail on the port, and the health check below
# would happily talk to the old one.
shopt -s nullglob
for f in var/*.pid; do
    pid="$(cat "$f" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        die "already running ($(basename "$f" .pid), pid $pid): stop it first with: make stop"
    fi
    rm -f "$f"
done
shopt -u nullglob
[ "$(http_status "$BASE/healthz")" = "0" ] || die "something already answers on $BASE: stop it or choose PORT=..."

# The settings refuse to start without SECRET_KEY when DEBUG is off: unless the environment or
# .env gives one, the demo uses its own random key, kept in var/ so logins survive a restart.
if [ -z "${SECRET_KEY:-}" ] && ! grep -qs '^SECRET_KEY=.' .env; then
    if [ ! -s var/secret_key ]; then
        (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(50))' >var/secret_key)
    fi
    SECRET_KEY="$(cat var/secret_key)"
    export SECRET_KEY
fi

# Notifications in the demo: e-mail goes to a local SMTP sink started below (every message
# readable at /n/dev/mail/), SMS to a file (var/sms/outbox.jsonl), unless the environment or
# .env configures a real SMTP server (EMAIL_HOST) or SMS backend. Links in messages point here.
DEMO_SMTP_PORT="${DEMO_SMTP_PORT:-1025}"
MAIL_SINK=0
if [ -z "${EMAIL_HOST:-}" ] && ! grep -qs '^EMAIL_HOST=.' .env; then
    export EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend
    export EMAIL_HOST=127.0.0.1 EMAIL_PORT="$DEMO_SMTP_PORT" EMAIL_USE_TLS=0
    MAIL_SINK=1
fi
export NOTIFICATIONS_MAIL_VIEWER_DIR="${NOTIFICATIONS_MAIL_VIEWER_DIR:-$ROOT/var/mail}"
export NOTIFICATIONS_SMS_BACKEND="${NOTIFICATIONS_SMS_BACKEND:-notifications.channels.console.FileSmsBackend}"
export NOTIFICATIONS_SMS_FILE="${NOTIFICATIONS_SMS_FILE:-$ROOT/var/sms/outbox.jsonl}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-$BASE}"

# --------------------------------------------------------------------------------------------
# One-shot steps
# --------------------------------------------------------------------------------------------
log "migrate"
"$PY" manage.py migrate --noinput
log "collectstatic"
"$PY" manage.py collectstatic --noinput -v0
log "road network (Coquimbo, © OpenStreetMap contributors, ODbL)"
"$PY" manage.py load_road_network --demo coquimbo --if-missing --no-progress
# History: past days played out by the simulator's world (the first run takes ~7 s a day).
log "load_demo (with ${DEMO_HISTORY_DAYS:-14} days of history)"
"$PY" manage.py load_demo --base-url "$BASE" --history "${DEMO_HISTORY_DAYS:-14}"
log "notifications: quiet hours off for the demo organization (it runs at any hour)"
"$PY" manage.py notifications_demo --org demo
# A webhook subscription of the demo organization to a local receiver (started below), which
# verifies every delivery's signature and logs it to var/log/webhook_receiver.log.
DEMO_WEBHOOK_PORT="${DEMO_WEBHOOK_PORT:-8099}"
log "webhooks: the demo organization's endpoint -> http://127.0.0.1:$DEMO_WEBHOOK_PORT/hooks"
"$PY" manage.py webhooks_demo --org demo --url "http://127.0.0.1:$DEMO_WEBHOOK_PORT/hooks" \
    --secret-file var/webhook_demo_secret
# A 3PL that reports through its own system: an AfterShip-shaped status webhook and a CSV
# manifest for andes3pl (docs/CARRIER_FEEDS.md), applied through the same scan service.
log "carrier feeds: andes3pl's manifest import and status webhooks"
"$PY" manage.py carrier_feeds_demo --org demo
# The SLA roll-ups of the history and today (docs/SLA_METRICS.md); afterwards the worker keeps
# them current from the event stream (dirty days every minute, yesterday again at night).
log "SLA roll-ups of the last $((${DEMO_HISTORY_DAYS:-14} + 1)) days"
"$PY" manage.py sla_rollup --org demo --days "$((${DEMO_HISTORY_DAYS:-14} + 1))"

# The demo's live ETAs use what is learned from that history (travel factors by hour,
# calibrated windows): trained in the background, a one-shot (not a service the demo waits on);
# until it finishes the ETAs use the network priors.
log "train_eta in the background (log $LOG_DIR/train_eta.log)"
printf '\n==== %s starting: train_eta --org demo\n' "$(date -Is)" >>"$LOG_DIR/train_eta.log"
nohup "$PY" manage.py train_eta --org demo >>"$LOG_DIR/train_eta.log" 2>&1 </dev/null &

# --------------------------------------------------------------------------------------------
# Long-running processes
# --------------------------------------------------------------------------------------------
NAMES=()
PIDS=()

# start NAME CMD...: run CMD in the background in its own session (so Ctrl-C in this terminal
# reaches only this script, and stop_demo.sh can signal the whole process group), appending
# to var/log/NAME.log and recording var/NAME.pid.
start() {
    local name="$1"
    shift
    local logfile="$LOG_DIR/$name.log"
    printf '\n==== %s starting: %s\n' "$(date -Is)" "$*" >>"$logfile"
    if command -v setsid >/dev/null 2>&1; then
        setsid "$@" >>"$logfile" 2>&1 </dev/null &
    else
        "$@" >>"$logfile" 2>&1 </dev/null &
    fi
    local pid=$!
    echo "$pid" >"var/$name.pid"
    NAMES+=("$name")
    PIDS+=("$pid")
    log "started $name (pid $pid, log $logfile)"
}

# shellcheck disable=SC2317  # called from the traps below
cleanup() {
    trap - INT TERM EXIT
    if [ "${#PIDS[@]}" -gt 0 ]; then
        log "stopping ${NAMES[*]}"
        bash "$ROOT/scripts/stop_demo.sh" || true
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 0' INT TERM

# The SMTP sink first: the worker sends the day's first messages as soon as it starts.
if [ "$MAIL_SINK" = "1" ]; then
    start mail_sink "$PY" manage.py mail_sink --port "$DEMO_SMTP_PORT" --dir "$NOTIFICATIONS_MAIL_VIEWER_DIR"
fi
start webhook_receiver "$PY" manage.py webhook_receiver --port "$DEMO_WEBHOOK_PORT" \
    --secret-file var/webhook_demo_secret
start web "$VENV/bin/uvicorn" control_tower.asgi:application --host "$HOST" --port "$PORT"
web_pid="${PIDS[${#PIDS[@]} - 1]}"
start worker "$VENV/bin/celery" -A control_tower worker -l info --concurrency 2
start beat "$VENV/bin/celery" -A control_tower beat -l info --schedule var/celerybeat-schedule

# Wait for the web to answer, failing fast if it died.
log "waiting for $BASE/healthz"
status=0
for _ in $(seq 1 60); do
    status="$(http_status "$BASE/healthz")"
    [ "$status" = "200" ] && break
    kill -0 "$web_pid" 2>/dev/null || break
    sleep 1
done
if [ "$status" != "200" ]; then
    printf '[demo] ERROR: %s/healthz did not answer 200 (last status: %s). Tail of %s/web.log:\n' \
        "$BASE" "$status" "$LOG_DIR" >&2
    tail -n 40 "$LOG_DIR/web.log" >&2 || true
    exit 1
fi

# The fleet simulator drives today's routes live and reports like real phones (over HTTP, so
# it starts once the web answers); --linger keeps it alive when the day's routes are done.
start simulator "$PY" manage.py simulate_fleet --org demo --base-url "$BASE" --linger

# A few customers' tracking links of today (delivered with its proof, the driver's next stop,
# later in the day): fresh links each run, since only their hashes are stored.
TRACKING_LINKS="$("$PY" manage.py tracking_links --org demo --sample 3 --base-url "$BASE" 2>&1)" ||
    TRACKING_LINKS="(tracking links could not be issued: $TRACKING_LINKS)"

# DRV-001's route of today is left to a person (the simulator never drives it): the driver
# app's login, the route and its parcels' barcodes, and a page of printable labels.
DRIVER_ROUTE="$("$PY" manage.py demo_driver_route --org demo --base-url "$BASE" \
    --sheet var/driver_parcels.html 2>&1)" ||
    DRIVER_ROUTE="driver    $BASE/driver/   (the demo driver's route could not be listed: $DRIVER_ROUTE)"

# The scorecard link covers the history and today (where the 3PL's feed events landed).
REPORTS_TO="$(date +%F)"
REPORTS_FROM="$(date -d "-7 days" +%F 2>/dev/null || date +%F)"

cat <<EOF

  Control tower is up:
    console   $BASE/console/   (dispatcher@demo.example / demo1234: the live map)
    reports   $BASE/reports/?from=$REPORTS_FROM&to=$REPORTS_TO   (ops@demo.example / demo1234: carrier SLA scorecards; carrier@demo.example sees only its own)
    ETAs      $BASE/reports/eta/?from=$REPORTS_FROM&to=$REPORTS_TO   (ops@demo.example: how accurate the ETAs shown were)
$(printf '%s\n' "$DRIVER_ROUTE" | sed 's/^/    /')
    home      $BASE/   (log in with the accounts above)
    admin     $BASE/admin/
    API docs  $BASE/api/docs/
    schema    $BASE/api/schema/
    health    $BASE/healthz

  What the simulated day tells people and systems (docs/NOTIFICATIONS.md, docs/WEBHOOKS.md):
    e-mails   $BASE/n/dev/mail/   (log in as owner@demo.example; the SMTP sink keeps them in $NOTIFICATIONS_MAIL_VIEWER_DIR)
    SMS       $NOTIFICATIONS_SMS_FILE   (one JSON line per message)
    messages  $BASE/admin/notifications/notification/   (the delivery log of each)
    webhooks  $BASE/admin/webhooks/webhookdelivery/   and the receiver's log $ROOT/$LOG_DIR/webhook_receiver.log

  $TRACKING_LINKS
  (more: $PY manage.py tracking_links --org demo --sample 5)

  Logs: $ROOT/$LOG_DIR/{$(IFS=,; echo "${NAMES[*]}")}.log

EOF

if [ "${DEMO_DETACH:-0}" = "1" ]; then
    trap - INT TERM EXIT
    log "running in the background; stop with: make stop"
    exit 0
fi

log "press Ctrl-C to stop"
# Return when any child exits: a demo with a dead worker is misleading, so stop everything.
set +e
wait -n "${PIDS[@]}"
code=$?
set -e
for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || log "${NAMES[$i]} exited (status $code); see $LOG_DIR/${NAMES[$i]}.log"
done
exit 1
