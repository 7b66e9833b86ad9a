#!/usr/bin/env bash
# Create the benchmark-only virtual environment used by benchmarks/monitoring.py:
#   benchmarks/.monitoring-venv with Evidently 0.7.23 (which needs pandas < 3), numpy, scipy.
# Usage: bash benchmarks/monitoring-peers/setup.sh [python]   (default python: python3; 3.11+)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../make-venv.sh" "$here" .monitoring-venv "$@"
