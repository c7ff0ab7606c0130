#!/usr/bin/env bash
# Runs each cargo-fuzz target for FUZZ_SECONDS (default 600) on its corpus in fuzz/corpus/<target>,
# then minimises the corpus (kept in git). Needs the nightly toolchain and cargo-fuzz (installed
# from crates.io when missing). A crash stops the script with libFuzzer's report; the input is in
# fuzz/artifacts/<target>/. See fuzz/README.md.
#
#   FUZZ_SECONDS   seconds per target (default 600)
#   FUZZ_TARGETS   targets to run (default: all four)
#   FUZZ_NICE      nice level for the fuzzers (default 0)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SECONDS_EACH="${FUZZ_SECONDS:-600}"
TARGETS="${FUZZ_TARGETS:-access_token request_body email_address mail_message}"
NICE="${FUZZ_NICE:-0}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
mkdir -p logs
for target in $TARGETS; do
  mkdir -p "corpus/$target"
  before=$(find "corpus/$target" -type f | wc -l)
  echo "== $target: ${SECONDS_EACH}s, corpus of $before inputs"
  nice -n "$NICE" cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 \
    >"logs/$target.log" 2>&1 || { tail -60 "logs/$target.log"; echo "FAIL: $target"; exit 1; }
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^Done ' "logs/$target.log" || true
  cargo +nightly fuzz cmin "$target" "corpus/$target" >"logs/$target.cmin.log" 2>&1
  echo "   corpus: $before -> $(find "corpus/$target" -type f | wc -l) inputs after minimising"
done
echo "PASS: no crash in $TARGETS"
