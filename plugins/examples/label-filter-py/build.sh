#!/usr/bin/env bash
# Builds label-filter-py.wasm from component.py with componentize-py
# (requirements.txt). --stub-wasi: the component imports nothing but the
# herald world, so it loads under herald's default policy.
# COMPONENTIZE_PY names the tool if it is not on PATH; OUT the output file.
set -euo pipefail
cd "$(dirname "$0")"
"${COMPONENTIZE_PY:-componentize-py}" --quiet -d ../../../wit -w plugin componentize \
  --stub-wasi -p . component -o "${OUT:-label-filter-py.wasm}"
