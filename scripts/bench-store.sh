#!/usr/bin/env bash
# Store benchmark with wrk (Debian package `wrk`): two gateway binaries, typically the previous
# commit's and this one's (`cargo build --release -p rdev` in each checkout), run side by side on
# embedded SQLite with no plugins and measured in alternating rounds in the same run:
#   - accept latency: POST /v1/projects/demo/commands at one connection (p50 and p99);
#   - authenticated GET /v1/projects throughput at 16 connections.
# Each gateway runs on core 0, wrk on core 1. Prints the medians of each and the ratios new/base.
# Usage: scripts/bench-store.sh BASE_BINARY NEW_BINARY [ROUNDS]
# NEW_CONFIG, if set, is TOML appended to the new gateway's configuration, for example
# NEW_CONFIG=$'[database]\nsqlite_synchronous = "normal"' to compare at the base's sync level.
# BASE_DATABASE_URL and NEW_DATABASE_URL, if set, put each gateway on a PostgreSQL database of
# its own instead of embedded SQLite (two databases: each binary migrates its own).
set -euo pipefail
command -v wrk >/dev/null || { echo "install wrk: apt-get install -y wrk" >&2; exit 1; }
base_bin=$1 new_bin=$2 rounds=${3:-5}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"kind":"shell","script":"true"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("RDEV_TOKEN")
EOF

# start NAME BINARY: starts a gateway; sets url_NAME and token_NAME.
start() {
  local dir="$work/$1"
  mkdir -p "$dir"
  local database=BASE_DATABASE_URL
  if [ "$1" = new ]; then database=NEW_DATABASE_URL; fi
  if [ -n "${!database:-}" ]; then printf 'database_url = "%s"\n' "${!database}" >"$dir/rdev.toml"; fi
  printf 'listen = "127.0.0.1:0"\ndata_dir = "%s/data"\nplugins = []\nlog_format = "text"\n[backend]\nworkspaces = "%s/ws"\n[projects.demo]\nmax_concurrent_commands = 8\n' \
    "$dir" "$dir" >>"$dir/rdev.toml"
  if [ "$1" = new ]; then printf '%s\n' "${NEW_CONFIG:-}" >>"$dir/rdev.toml"; fi
  RUST_LOG=error taskset -c 0 "$2" --config "$dir/rdev.toml" serve >"$dir/out" 2>"$dir/err" &
  pids+=($!)
  until grep -q rdev_ "$dir/out" 2>/dev/null; do sleep 0.1; done
  printf -v "url_$1" '%s' "$(sed -n 's/^rdev listening on //p' "$dir/out")"
  printf -v "token_$1" '%s' "$(grep -o 'rdev_[A-Za-z0-9_]*' "$dir/out" | head -1)"
}

# to_us VALUE: wrk's latency (e.g. 812.00us, 4.91ms, 1.02s) in microseconds.
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; printf "%.0f", n }'; }

accept() { # NAME -> "p50 p99" in µs
  local url="url_$1" token="token_$1" out
  out=$(RDEV_TOKEN=${!token} taskset -c 1 wrk -t1 -c1 -d3s --latency -s "$work/post.lua" "${!url}/v1/projects/demo/commands")
  echo "$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")") $(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
}

reads() { # NAME -> requests/s
  local url="url_$1" token="token_$1"
  taskset -c 1 wrk -t1 -c16 -d3s -H "Authorization: Bearer ${!token}" "${!url}/v1/projects" | awk '/Requests\/sec/ {print $2}'
}

start base "$base_bin"
start new "$new_bin"
declare -a p50_base p99_base p50_new p99_new get_base get_new
for ((i = 0; i < rounds; i++)); do
  read -r a b <<<"$(accept base)"; p50_base+=("$a"); p99_base+=("$b")
  read -r a b <<<"$(accept new)"; p50_new+=("$a"); p99_new+=("$b")
  get_base+=("$(reads base)"); get_new+=("$(reads new)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
report() { # LABEL BASE NEW
  python3 -c "import sys; b, n = float(sys.argv[2]), float(sys.argv[3]); print(f'{sys.argv[1]:<34} base {b:>10.0f}  new {n:>10.0f}  new/base {100 * n / b:6.1f}%')" "$@"
}
echo "wrk on core 1, gateways on core 0, $rounds alternating rounds of 3 s (medians)"
report "POST commands p50 (us, 1 conn)" "$(median "${p50_base[@]}")" "$(median "${p50_new[@]}")"
report "POST commands p99 (us, 1 conn)" "$(median "${p99_base[@]}")" "$(median "${p99_new[@]}")"
report "GET /v1/projects (req/s, 16 conn)" "$(median "${get_base[@]}")" "$(median "${get_new[@]}")"
for name in base new; do
  echo "$name: WAL $(stat -c %s "$work/$name/data/rdev.db-wal" 2>/dev/null || echo 0) bytes after the run"
done
