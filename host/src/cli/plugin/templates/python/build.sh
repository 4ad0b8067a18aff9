#!/usr/bin/env bash
# Builds {{name}}.wasm, a mecha {{world}} plugin, from app.py and the contract in wit/.
set -euo pipefail
cd "$(dirname "$0")"

wanted="0.25.1"
if ! command -v componentize-py >/dev/null 2>&1; then
    echo "componentize-py is not installed: run \`pip install -r requirements.txt\`" >&2
    exit 1
fi
found="$(componentize-py --version 2>/dev/null | awk '{print $NF}')"
if [[ "$found" != "$wanted" ]]; then
    echo "componentize-py $wanted is needed, found ${found:-an unknown version}:" \
        "run \`pip install -r requirements.txt\`" >&2
    exit 1
fi

componentize-py -d wit -w {{world}} componentize app -o {{name}}.wasm
echo "built {{name}}.wasm"
