#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds the
# package, then runs lints, Rust tests (unit, proptest, loom) and the Python
# suites (cross-process, bad input, CLI). Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Python tools"
python3 -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.5,<2" "numpy>=1.24" "pytest>=8" pytest-timeout ruff uvloop

step "build and install the ringcast wheel"
python3 -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .

step "lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
ruff check python tests benches examples
ruff format --check python tests benches examples

step "Rust: unit, property and end-to-end tests"
cargo test --workspace --exclude ringcast-py

step "Rust: loom model checks of the publish/read protocol"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release -p ringcast-core --test loom_protocol

step "Python: API, bad input, cross-process and CLI suites"
# Run from tests/ so the installed package, not the source tree, is imported.
(cd tests && python3 -m pytest -q -p no:cacheprovider .)
