#!/usr/bin/env bash
# make sanity: ansible-test's sanity suite, every test, each in its own venv (--venv), as Galaxy and Automation
# Hub reviewers run it. ansible-test needs the collection at ansible_collections/sre/incident_response, so this
# copies the checkout's files there (tracked and untracked, not ignored: what a clean clone plus work in progress
# holds) and runs from the copy. Extra arguments go to ansible-test, e.g. scripts/sanity.sh --test pylint.
# The venvs are cached under ~/.ansible/test; the first run builds them (pip via the machine's pip configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/.venv/bin}
PY=${SANITY_PYTHON:-3.11}

"$BIN/python" scripts/sanity_bootstrap.py

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sanity.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DEST=$WORK/ansible_collections/sre/incident_response
mkdir -p "$DEST"
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' rel; do
  [[ -f $rel && $rel != incidents/* ]] || continue
  mkdir -p "$DEST/$(dirname "$rel")"
  cp -p "$rel" "$DEST/$rel"
done
cd "$DEST"
"$BIN/ansible-test" sanity --python "$PY" --venv --color no "$@"
