#!/usr/bin/env bash
# Installs the generated ILM policies and index templates next to this script
# (<service>-logs.ilm-policy.json, <service>-logs.index-template.json) into Elasticsearch,
# policies first (the templates name them). Idempotent: PUT replaces what is there.
#
#   ES_URL=http://127.0.0.1:9200 deploy/elasticsearch/install.sh
#
# deploy/compose.yaml runs it once, in the `es-setup` container, as soon as Elasticsearch is
# healthy. Install before the services first ship: a data stream created earlier was shaped
# by Elasticsearch's built-in logs-*-* template and keeps that mapping until it rolls over.
# For a secured cluster, pass credentials in ES_AUTH_HEADER (e.g. "Authorization: ApiKey …"),
# from a file or a secret store, never on the command line of a shared host.
set -euo pipefail

es="${ES_URL:-http://127.0.0.1:9200}"
dir="$(cd "$(dirname "$0")" && pwd)"
body="$(mktemp)"
trap 'rm -f "$body"' EXIT

put() {
  local path="$1" file="$2" code
  local args=(-sS -o "$body" -w '%{http_code}' -X PUT "$es$path"
    -H 'Content-Type: application/json' --data-binary "@$file")
  if [[ -n "${ES_AUTH_HEADER:-}" ]]; then
    args+=(-H "$ES_AUTH_HEADER")
  fi
  code="$(curl "${args[@]}")"
  if [[ "$code" != 2?? ]]; then
    echo "install.sh: PUT $path answered $code:" >&2
    cat "$body" >&2
    echo >&2
    exit 1
  fi
  echo "PUT $path: $code"
}

shopt -s nullglob
policies=("$dir"/*-logs.ilm-policy.json)
templates=("$dir"/*-logs.index-template.json)
if (( ${#policies[@]} == 0 || ${#templates[@]} == 0 )); then
  echo "install.sh: no generated policies or templates in $dir (run deploy/generate.sh)" >&2
  exit 1
fi
for file in "${policies[@]}"; do
  name="$(basename "$file" .ilm-policy.json)"
  put "/_ilm/policy/$name" "$file"
done
for file in "${templates[@]}"; do
  name="$(basename "$file" .index-template.json)"
  put "/_index_template/$name" "$file"
done
