#!/usr/bin/env bash
# Builds python-probe.wasm (world `source`) next to this script.
exec "$(dirname "$0")/../componentize-python.sh" "$(dirname "$0")" source python-probe
