#!/usr/bin/env bash
# Builds the Python test plugin in DIR (its app.py) for WORLD into DIR/NAME.wasm, with
# componentize-py and the mecha WIT, as a plugin author would.
#
#   componentize-python.sh DIR WORLD NAME
set -euo pipefail

dir="$(cd "$1" && pwd)"
world="$2"
name="$3"
# The WIT package (with its WASI dependencies in wit/deps/) at the root of the mecha repository.
wit="${MECHA_WIT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/wit}"
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

cd "$dir"
componentize-py -d "$wit" -w "$world" componentize app -o "$name.wasm"
echo "built $dir/$name.wasm"
