#!/usr/bin/env bash
# Prints the path of the project's Python: a virtualenv made by Debian's /usr/bin/python3
# (not whatever python3 is on PATH) holding exactly scripts/requirements.txt from PyPI. It is
# made again when those pins change, and always with --fresh (CI), so that packages left on
# the machine by earlier work cannot make a script pass. Needs scripts/install-deps.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-venv
requirements=scripts/requirements.txt
if [ "${1:-}" = --fresh ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
    cp "$requirements" "$venv/requirements.txt"
fi
echo "$PWD/$venv/bin/python"
