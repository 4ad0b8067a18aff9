#!/usr/bin/env bash
# Runs the unit tests natively, builds the component, and runs it once in mecha as the daemon
# would, with the arguments in fixtures/test-args (one argument per line).
#
#   MECHA=/path/to/mecha ./test.sh          use another mecha binary
#   CARGO_TARGET_DIR=/tmp/target ./test.sh  build somewhere else
set -euo pipefail
cd "$(dirname "$0")"

mecha="${MECHA:-mecha}"
target_dir="${CARGO_TARGET_DIR:-target}"

cargo test
cargo build --target wasm32-wasip2 --release

args=()
while IFS= read -r line || [[ -n "$line" ]]; do
    [[ -z "$line" || "$line" == "#"* ]] && continue
    args+=("$line")
done < fixtures/test-args

"$mecha" plugin test "$target_dir/wasm32-wasip2/release/{{crate}}.wasm" "${args[@]}"
