#!/usr/bin/env bash
# Regenerates every generated file of deploy/ from its sources:
#
#   deploy/alerting/<service>.toml                 -> deploy/prometheus/rules/<service>.rules.yml
#                                                     deploy/prometheus/rules/<service>.rules.test.yml
#                                                     deploy/grafana/dashboards/<service>.dashboard.json
#   deploy/alertmanager/routing.toml (+ the specs) -> deploy/alertmanager/alertmanager.yml
#   deploy/elasticsearch/telemetry/<service>.toml  -> deploy/elasticsearch/<service>-logs.index-template.json
#                                                     deploy/elasticsearch/<service>-logs.ilm-policy.json
#
# Usage, from the repository root:
#
#   deploy/generate.sh            # regenerate in place (then commit the outputs with the sources)
#   deploy/generate.sh OUT_DIR    # write the same tree under OUT_DIR instead, e.g. to diff:
#                                 #   deploy/generate.sh /tmp/deploy && diff -r ... (see README)
#
# The binary is $STOCKBOT_TELEMETRY, default target/debug/stockbot-telemetry (build it with
# `cargo build -p stockbot-telemetry --features cli`; this script never builds). With promtool
# and amtool on PATH the rules are checked (`promtool check rules`, `promtool test rules`) and
# the Alertmanager configuration too (`amtool check-config`); without them those checks are
# skipped, and the generator says so.
#
# The outputs depend on the sources and the generator only: no dates, host names or paths.
set -euo pipefail

bin="${STOCKBOT_TELEMETRY:-target/debug/stockbot-telemetry}"
out="${1:-deploy}"

if [[ ! -f deploy/generate.sh || ! -d deploy/alerting ]]; then
  echo "generate.sh: run it from the repository root" >&2
  exit 2
fi
if [[ ! -x "$bin" ]]; then
  echo "generate.sh: $bin is not an executable (set STOCKBOT_TELEMETRY, or build it with" \
    "cargo build -p stockbot-telemetry --features cli)" >&2
  exit 2
fi

rules="$out/prometheus/rules"
dashboards="$out/grafana/dashboards"
mkdir -p "$rules" "$dashboards" "$out/alertmanager" "$out/elasticsearch"

# Outputs of sources that were removed must not linger.
rm -f "$rules"/*.rules.yml "$rules"/*.rules.test.yml "$dashboards"/*.dashboard.json \
  "$out/alertmanager/alertmanager.yml" \
  "$out/elasticsearch"/*-logs.index-template.json "$out/elasticsearch"/*-logs.ilm-policy.json

specs=()
for spec in deploy/alerting/*.toml; do
  specs+=(--spec "$spec")
  "$bin" generate rules --spec "$spec" --out "$rules" --check
  "$bin" generate dashboards --spec "$spec" --out "$dashboards"
done

"$bin" generate alertmanager --notifications deploy/alertmanager/routing.toml "${specs[@]}" \
  --out "$out/alertmanager" --check

for config in deploy/elasticsearch/telemetry/*.toml; do
  "$bin" generate index-template --config "$config" --out "$out/elasticsearch"
done
