#!/usr/bin/env bash
# Builds python-clock.wasm next to this script from app.py and the mecha WIT.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The WIT package (with its WASI dependencies in wit/deps/) at the root of the mecha repository.
wit="${MECHA_WIT:-$here/../../../wit}"
want="0.25.1"

if ! command -v componentize-py >/dev/null 2>&1; then
    echo "error: componentize-py is not installed; run: pip install componentize-py==$want" >&2
    exit 1
fi
have="$(componentize-py --version | awk '{print $2}')"
if [ "$have" != "$want" ]; then
    echo "error: componentize-py $have found, $want needed; run: pip install componentize-py==$want" >&2
    exit 1
fi
if [ ! -f "$wit/worlds.wit" ]; then
    echo "error: no mecha WIT at $wit (set MECHA_WIT to the wit/ folder of the mecha repository)" >&2
    exit 1
fi

cd "$here"
componentize-py -d "$wit" -w policy componentize app -o python-clock.wasm
echo "built $here/python-clock.wasm"
