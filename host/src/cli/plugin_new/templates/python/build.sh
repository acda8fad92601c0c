#!/usr/bin/env bash
# Builds {name}.wasm from component.py with componentize-py (requirements.txt;
# COMPONENTIZE_PY names it if it is not on PATH). --stub-wasi: the component
# imports nothing but the herald world, so it loads under herald's default
# policy.
set -euo pipefail
cd "$(dirname "$0")"
"${COMPONENTIZE_PY:-componentize-py}" --quiet -d wit -w plugin componentize \
  --stub-wasi -p . component -o "${OUT:-{name}.wasm}"
