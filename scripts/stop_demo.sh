#!/usr/bin/env bash
# Stop what scripts/run_demo.sh started: every PID recorded in var/*.pid.
# TERM first (uvicorn and Celery shut down cleanly on it), KILL after 15 s.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[stop] %s\n' "$*"; }

# Signal the process group when the process leads one (run_demo starts each with setsid, so
# Celery's pool children go too); otherwise just the process.
signal() {
    local sig="$1" pid="$2" pgid
    pgid="$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)"
    if [ "$pgid" = "$pid" ]; then
        kill -"$sig" -- "-$pid" 2>/dev/null || true
    else
        kill -"$sig" "$pid" 2>/dev/null || true
    fi
}

# Running and not a zombie (a killed child stays a zombie until its parent reaps it).
alive() {
    local stat
    stat="$(ps -o stat= -p "$1" 2>/dev/null || true)"
    [ -n "$stat" ] && [[ "$stat" != Z* ]]
}

shopt -s nullglob
files=(var/*.pid)
if [ "${#files[@]}" -eq 0 ]; then
    log "nothing to stop (no var/*.pid)"
    exit 0
fi

running=()
for f in "${files[@]}"; do
    pid="$(cat "$f" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"; then
        log "stopping $(basename "$f" .pid) (pid $pid)"
        signal TERM "$pid"
        running+=("$pid")
    fi
done

for _ in $(seq 1 30); do
    still=()
    for pid in "${running[@]}"; do
        if alive "$pid"; then still+=("$pid"); fi
    done
    running=("${still[@]}")
    [ "${#running[@]}" -eq 0 ] && break
    sleep 0.5
done
for pid in "${running[@]}"; do
    log "pid $pid did not stop in time: killing"
    signal KILL "$pid"
done

rm -f "${files[@]}"
log "stopped"
