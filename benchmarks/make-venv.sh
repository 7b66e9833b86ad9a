#!/usr/bin/env bash
# Create (or update) a benchmark-only virtual environment from a peers folder's
# requirements.txt, constrained by its requirements.lock.txt (`pip freeze` of a known-good
# install). Used by monitoring-peers/setup.sh and cbpe-peers/setup.sh.
# Usage: bash benchmarks/make-venv.sh PEERS_FOLDER VENV_NAME [python]   (python default: python3)
set -euo pipefail
here="$(cd "$1" && pwd)"
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$2"
python="${3:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
# Keep the environment out of git without touching the repository's .gitignore.
echo '*' > "$venv/.gitignore"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
constraints=()
if [[ -f "$here/requirements.lock.txt" ]]; then
    constraints=(-c "$here/requirements.lock.txt")
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/requirements.txt" "${constraints[@]}"
"$venv/bin/python" -m pip check
echo "venv ready: $venv"
