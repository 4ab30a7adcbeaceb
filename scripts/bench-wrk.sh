#!/usr/bin/env bash
# Benchmark 1 with an external load tool: wrk (Debian package `wrk`) against the gateway built by
# `cargo bench`, each pinned to its own core. Alternates the bare route and the authenticated
# `GET /v1/projects`, with rate limits (a tier no request exceeds) and without, and on a second
# gateway process exporting every span over OTLP/HTTP; prints the median throughput of each, the
# ratio to the bare route, the rate limiter's cost and the trace export's cost.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "install wrk: apt-get install -y wrk" >&2; exit 1; }
cargo bench --bench gateway --no-run 2>/dev/null
bench=$(cargo bench --bench gateway --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json, sys
print(next(m["executable"] for m in map(json.loads, sys.stdin) if m.get("target", {}).get("name") == "gateway" and m.get("executable")))')
out=$(mktemp); traced_out=$(mktemp)
taskset -c 0 "$bench" serve >"$out" &
server=$!
taskset -c 0 "$bench" serve --traced >"$traced_out" &
traced_server=$!
trap 'kill $server $traced_server 2>/dev/null; rm -f "$out" "$traced_out"' EXIT
until [ -s "$out" ] && [ -s "$traced_out" ]; do sleep 0.1; done
read -r base token free_base free_token <"$out"
read -r traced_base traced_token _ _ <"$traced_out"
rate() { taskset -c 1 wrk -t1 -c16 -d3s -H "Authorization: Bearer $2" "$1" | awk '/Requests\/sec/ {print $2}'; }
bare=(); auth=(); free=(); traced=()
for _ in 1 2 3 4 5 6 7; do
  bare+=("$(rate "$base/bare" "$token")")
  auth+=("$(rate "$base/v1/projects" "$token")")
  free+=("$(rate "$free_base/v1/projects" "$free_token")")
  traced+=("$(rate "$traced_base/v1/projects" "$traced_token")")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 4p; }
b=$(median "${bare[@]}"); a=$(median "${auth[@]}"); f=$(median "${free[@]}"); t=$(median "${traced[@]}")
echo "wrk, 1 thread, 16 connections, 7 x 3 s each (medians), server and wrk on separate cores"
echo "GET /bare:                     $b req/s"
echo "GET /v1/projects:              $a req/s"
echo "GET /v1/projects, limits off:  $f req/s"
echo "GET /v1/projects, traced:      $t req/s  (every span exported over OTLP/HTTP)"
python3 -c "print(f'ratio authenticated / bare: {100 * $a / $b:.1f}%  (target >= 85%)')"
python3 -c "print(f'rate limiter cost: {100 * (1 - $a / $f):.1f}%  (target <= 3%)')"
python3 -c "print(f'trace export cost: {100 * (1 - $t / $a):.1f}%  (target <= 10%)')"
