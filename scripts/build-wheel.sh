#!/usr/bin/env bash
# Builds the portable release wheel of ringcast: one wheel for CPython >= 3.11
# (abi3) on Linux with glibc >= 2.17 (manylinux2014 / manylinux_2_17; this
# host's architecture), installable with pip on hosts without Rust. It links
# with zig (PyPI `ziglang`) against glibc 2.17's symbols, and maturin audits
# the result for manylinux_2_17 (symbol versions, linked libraries) before
# writing the wheel.
#
# Needs cargo and python3 (>= 3.11); maturin and ziglang come from PyPI: used
# from python3 when it has both, otherwise installed into a private venv
# (target/wheel-tools), not into python3 itself.
#
# Usage: bash scripts/build-wheel.sh [--out DIR] [maturin build options...]
#   --out DIR   where the wheel goes (default: dist/)
#   anything else is passed to `maturin build`, e.g. `--features test-hooks`
#   (scripts/test.sh builds the test suite's wheel so; not for release).
# The wheel's absolute path is the last line on stdout; the rest goes to
# stderr.
# Env: PYTHON (default python3), CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --out=*) out="${1#--out=}"; shift ;;
        *) extra+=("$1"); shift ;;
    esac
done

say() { printf '%s\n' "$*" >&2; }

py="${PYTHON:-python3}"
command -v cargo >/dev/null 2>&1 || { say "build-wheel: cargo not found (install Rust: https://rustup.rs)"; exit 1; }
command -v "$py" >/dev/null 2>&1 || { say "build-wheel: $py not found"; exit 1; }

has_tools() {
    "$1" -c 'import importlib.util as u, sys; sys.exit(not (u.find_spec("maturin") and u.find_spec("ziglang")))' 2>/dev/null
}

if ! has_tools "$py"; then
    tools="${CARGO_TARGET_DIR:-target}/wheel-tools"
    if ! has_tools "$tools/bin/python"; then
        say "build-wheel: installing maturin and ziglang from PyPI into $tools"
        if ! "$py" -m venv "$tools" >&2; then
            say "build-wheel: '$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
            exit 1
        fi
        "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
            "maturin>=1.5,<2" ziglang >&2
    fi
    py="$tools/bin/python"
fi

# maturin runs zig as `$py -m ziglang`.
export CARGO_ZIGBUILD_PYTHON_PATH="$py"
mkdir -p "$out"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# With --zig, maturin passes --target to cargo: the build lands in
# target/<host triple>/release, shared by every build made here (with any
# features) but not by `pip install .` (target/release). strip=debuginfo
# applies to the extension only (the release profile's line tables are 80%
# of it); symbol names stay, for backtraces and perf.
"$py" -m maturin build --release --zig --compatibility manylinux_2_17 \
    --out "$out" "${extra[@]}" -- -C strip=debuginfo 2>&1 | tee "$log" >&2
wheel="$(sed -n 's/^.*Built wheel.* to //p' "$log" | tail -n 1)"
if [ -z "$wheel" ] || [ ! -f "$wheel" ]; then
    say "build-wheel: maturin reported no wheel"
    exit 1
fi
wheel="$(realpath "$wheel")"
size="$(stat -c %s "$wheel")"
say "build-wheel: $wheel ($((size / 1024)) KiB)"
echo "$wheel"
