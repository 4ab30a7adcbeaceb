#!/usr/bin/env bash
# Replica benchmarks (host/benches/replicas.rs) on a throwaway PostgreSQL cluster, or on the
# server at RDEV_BENCH_DATABASE_URL: cross-replica live output latency and queued -> running
# after a slot frees on another replica, each against its single-replica baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/postgres.sh
. scripts/postgres.sh
if [ -z "${RDEV_BENCH_DATABASE_URL:-}" ]; then
  start_postgres
  export RDEV_BENCH_DATABASE_URL="$PG_URL"
fi
cargo bench -p rdev --bench replicas
