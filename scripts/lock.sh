#!/usr/bin/env bash
# Re-lock the Python dependencies from pyproject.toml into hashed, fully pinned files:
#   requirements/dev.txt      runtime + the `dev` extra (bootstrap installs this: tests, CI)
#   requirements/runtime.txt  runtime only (the Dockerfile installs this)
# Versions already in a lock file are kept (pip-compile prefers existing pins), so adding a
# dependency does not upgrade everything else. To move versions on:
#   make lock LOCK_ARGS=--upgrade                     everything, within pyproject's ranges
#   make lock LOCK_ARGS="--upgrade-package django"    one package
#
# pip-tools runs from its own virtualenv, not the project's: the lock tool is not something
# the project needs at run or test time, and pip-compile installed next to the project would
# pin itself (and its own pip) into the lock it writes.
#
# Environment:
#   LOCK_TOOLS_VENV=var/lock-tools   where pip-tools is installed
#   LOCK_ARGS=...                    extra pip-compile arguments (applied to the dev lock)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="${LOCK_TOOLS_VENV:-var/lock-tools}"
PIP_TOOLS_VERSION="7.7.0"

log() { printf '[lock] %s\n' "$*"; }

if [ ! -x "$TOOLS/bin/pip-compile" ] \
    || [ "$("$TOOLS/bin/pip" show pip-tools 2>/dev/null | sed -n 's/^Version: //p')" != "$PIP_TOOLS_VERSION" ]; then
    log "installing pip-tools $PIP_TOOLS_VERSION into $TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet "pip-tools==$PIP_TOOLS_VERSION"
fi

# Shared by both files. WHY each flag:
#   --generate-hashes   every file PyPI lists for the pinned version (and any file a local
#                       mirror offers for it), so `pip install --require-hashes` accepts
#                       whichever wheel fits the machine and refuses anything else;
#   --allow-unsafe      pin pip/setuptools too when something depends on them (pip-audit
#                       needs pip): --require-hashes refuses an unpinned requirement;
#   --strip-extras      usable as a constraints file;
#   --no-emit-*         a machine's own mirrors (pip.conf) must not end up in the repository.
COMMON=(--quiet --generate-hashes --allow-unsafe --strip-extras
    --no-emit-index-url --no-emit-trusted-host --no-emit-find-links)
export CUSTOM_COMPILE_COMMAND="make lock"
mkdir -p requirements

log "requirements/dev.txt (runtime + dev extra)"
# shellcheck disable=SC2086  # LOCK_ARGS is a list of arguments
"$TOOLS/bin/pip-compile" "${COMMON[@]}" ${LOCK_ARGS:-} --extra dev \
    -o requirements/dev.txt pyproject.toml

# The runtime lock is constrained by the dev lock: the image runs the very versions the
# tests ran against.
log "requirements/runtime.txt (runtime only, same versions)"
"$TOOLS/bin/pip-compile" "${COMMON[@]}" -c requirements/dev.txt \
    -o requirements/runtime.txt pyproject.toml
log "done: review with git diff requirements/"
