#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each, starting
# from the committed seed corpus (fuzz/seeds; what a run finds goes to a
# scratch corpus, not into the repository). Fails on any crash, panic,
# hang (-timeout) or broken assertion; the input that did it is
# left in fuzz/artifacts/<target>/ to turn into a regression test.
# Usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]   (default 15 s, all)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-15}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(layout schema histogram ring_file itch_decode moldudp64 pcap)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet
fi
# Stable Rust: coverage instrumentation without a sanitizer (-s none).
cargo fuzz build -s none -O 2>&1 | grep -E "^(error|warning)" || true

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch" /dev/shm/ringcast-fuzz-* 2>/dev/null || true' EXIT
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    if ! cargo fuzz run "$target" -s none -O "$scratch/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz target $target failed: see the input in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo '?')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo '?')
    corpus=$(find "$scratch/$target" -type f | wc -l)
    printf '%-10s %12s runs in %ss, coverage %s edges, %s new corpus inputs\n' \
        "$target" "$runs" "$seconds" "$cov" "$corpus"
done
