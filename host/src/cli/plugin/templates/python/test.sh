#!/usr/bin/env bash
# Builds the component and runs it once in mecha as the daemon would, with the arguments in
# fixtures/test-args (one argument per line).
#
#   MECHA=/path/to/mecha ./test.sh          use another mecha binary
set -euo pipefail
cd "$(dirname "$0")"

mecha="${MECHA:-mecha}"

bash ./build.sh

args=()
while IFS= read -r line || [[ -n "$line" ]]; do
    [[ -z "$line" || "$line" == "#"* ]] && continue
    args+=("$line")
done < fixtures/test-args

"$mecha" plugin test "{{name}}.wasm" "${args[@]}"
