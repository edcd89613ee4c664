#!/usr/bin/env bash
# Sets up .venv for the examples: talon (editable) with snnTorch, test and NIR extras. Safe to run again.
# Usage, from the repository root: bash scripts/setup.sh && .venv/bin/python examples/snntorch_tutorial.py
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
# constraints.txt pins torch so pip never swaps in a different (multi-GB) build.
.venv/bin/pip install -q -c constraints.txt -e ".[dev,nir,hls4ml,io,distributed]"
