#!/usr/bin/env bash
# Runs the whole benchmark suite of docs/performance.md: every budget row with its baseline
# in the same run (logs, metrics, spans, #[instrument_trade], the composite trading step and
# two-thread contention), the allocation counts, and the log-shipping throughput.
#
#   bash scripts/bench.sh           # full criterion runs (about 15 minutes on 2 cores)
#   bash scripts/bench.sh --quick   # criterion's quick mode (a few minutes)
#
# Results: criterion's report on stdout and in target/criterion/; copy the medians into
# docs/performance.md (ratios are what the budgets are about: run it on an idle machine).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
if [[ "${1:-}" == "--quick" ]]; then
  quick=(-- --quick)
elif [[ $# -gt 0 ]]; then
  echo "usage: bash scripts/bench.sh [--quick]" >&2
  exit 2
fi

for bench in logs metrics spans instrument composite; do
  printf '\n==> %s\n' "$bench"
  cargo bench -p stockbot-telemetry --bench "$bench" "${quick[@]}"
done
printf '\n==> allocations per call\n'
cargo test --release -p stockbot-telemetry --test allocations -- --nocapture
printf '\n==> log shipping to a local fake Elasticsearch\n'
cargo bench -p examples --bench shipping "${quick[@]}"
