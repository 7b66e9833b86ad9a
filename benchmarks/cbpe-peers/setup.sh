#!/usr/bin/env bash
# Create the benchmark-only virtual environment used by benchmarks/cbpe_agreement.py:
#   benchmarks/.cbpe-venv with NannyML 0.13.1 (about 2 GB with its dependencies).
# Usage: bash benchmarks/cbpe-peers/setup.sh [python]   (default python: python3; 3.11+)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../make-venv.sh" "$here" .cbpe-venv "$@"
