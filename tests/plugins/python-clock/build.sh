#!/usr/bin/env bash
# Builds python-clock.wasm (world `policy`) next to this script.
exec "$(dirname "$0")/../componentize-python.sh" "$(dirname "$0")" policy python-clock
