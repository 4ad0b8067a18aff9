#!/usr/bin/env bash
# Builds c-source.wasm next to this script from source.c and the mecha WIT.
#
#   wit-bindgen c     source world -> build/source.c, source.h, source_component_type.o
#   clang + wasm-ld   source.c + bindings + wasi-libc -> build/core.wasm (a core module)
#   wasm-tools        core.wasm -> c-source.wasm (a component), checked against the world
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The WIT package (with its WASI dependencies in wit/deps/) at the root of the mecha repository.
wit="${MECHA_WIT:-$here/../../../wit}"
build="$here/build"
out="$here/c-source.wasm"
wit_bindgen_version="0.46.0"

missing=0
need() {  # need COMMAND HOW-TO-INSTALL
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "error: $1 is not installed; run: $2" >&2
        missing=1
    fi
}
need clang "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
need wasm-ld "apt-get install lld"
need wit-bindgen "cargo install wit-bindgen-cli --version $wit_bindgen_version --locked"
need wasm-tools "cargo install wasm-tools --version 1.239.0 --locked --no-default-features --features component,validate,print"
[ "$missing" = 0 ] || exit 1

have="$(wit-bindgen --version | awk '{print $2}')"
if [ "$have" != "$wit_bindgen_version" ]; then
    echo "error: wit-bindgen $have found, $wit_bindgen_version needed; run:" \
        "cargo install wit-bindgen-cli --version $wit_bindgen_version --locked --force" >&2
    exit 1
fi

# wasi-libc: Debian and Ubuntu install it where clang looks by default (/usr/include/wasm32-wasi,
# /usr/lib/wasm32-wasi); other distributions and wasi-sdk ship a sysroot directory, which
# WASI_SYSROOT names.
sysroot=()
if [ -n "${WASI_SYSROOT:-}" ]; then
    if [ ! -d "$WASI_SYSROOT/include" ]; then
        echo "error: WASI_SYSROOT=$WASI_SYSROOT is not a WASI sysroot (it has no include/)" >&2
        exit 1
    fi
    sysroot=(--sysroot="$WASI_SYSROOT")
elif [ -f /usr/lib/wasm32-wasi/libc.a ]; then
    sysroot=()
elif [ -f /usr/share/wasi-sysroot/lib/wasm32-wasi/libc.a ]; then
    sysroot=(--sysroot=/usr/share/wasi-sysroot)
else
    echo "error: wasi-libc is not installed; run: apt-get install wasi-libc" \
        "(or set WASI_SYSROOT to a WASI sysroot, e.g. wasi-sdk's share/wasi-sysroot)" >&2
    exit 1
fi
target=(--target=wasm32-wasi ${sysroot[@]+"${sysroot[@]}"})

# clang links compiler-rt's builtins for wasm32 into every module.
builtins="$(clang "${target[@]}" -print-libgcc-file-name)"
if [ ! -f "$builtins" ]; then
    echo "error: $builtins is missing; run: apt-get install libclang-rt-dev-wasm32" >&2
    exit 1
fi

if [ ! -f "$wit/worlds.wit" ]; then
    echo "error: no mecha WIT at $wit (set MECHA_WIT to the wit/ folder of the mecha repository)" >&2
    exit 1
fi

rm -rf "$build"
mkdir -p "$build"
wit-bindgen c --world source "$wit" --out-dir "$build"

# A reactor: no main, the host calls the exported functions. The generated bindings export the
# world's functions by name and carry the component type in source_component_type.o.
clang "${target[@]}" -mexec-model=reactor -O2 -Wall -Wextra \
    -I "$build" \
    -o "$build/core.wasm" \
    "$here/source.c" "$build/source.c" "$build/source_component_type.o" \
    -Wl,--strip-debug

# The component encoder would need a WASI preview 1 adapter if the core module called into
# the system; this one must import nothing but mecha:plugin functions.
if wasm-tools print "$build/core.wasm" | grep '(import "wasi_snapshot_preview1"' >&2; then
    echo "error: core.wasm imports WASI preview 1 functions (above); use no libc function" \
        "that reaches the system (stdio, printf, time, getenv ...)" >&2
    exit 1
fi

wasm-tools component new "$build/core.wasm" -o "$out"
wasm-tools validate "$out"
# Imports and exports fit the `source` world, as mecha will check when installing it.
wasm-tools component targets --world source "$wit" "$out"
echo "built $out ($(wc -c <"$out") bytes)"
