#!/usr/bin/env bash
# Side-by-side login throughput: one otpgate node on SQLite, one node on PostgreSQL, and two
# nodes on one PostgreSQL database, driven by the peer harness's bench_flow.py (the whole
# two-step loop including SMS pickup at a local fake gateway).
#
# Usage: scripts/bench-cluster.sh [DURATION_SECONDS]   (default 15; writes target/bench-cluster/)
# Needs: a release build (cargo build --release --locked), ../shared/peer, python3, a local
# PostgreSQL reachable at $TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
# Every server uses the minimal PIN hash, so the figures compare storage set-ups, not Argon2.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15}
ROOT=$(pwd)
OUT=$ROOT/target/bench-cluster
PG_ADMIN=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BIN=$ROOT/target/release/otpgate
GW_PORT=5070
. "$ROOT/scripts/bench-common.sh"
bench_prepare

start_node() {  # name port database-url data-dir
  node_start "$OUT/$1.toml" "$2" fast "database_url = \"$3\"
data_dir = \"$4\""
}
setup() {  # port data-dir
  node_lenient "$1" "$2"
  $PY setup_peer.py --base-url "http://127.0.0.1:$1" --users 200 --run-dir "$OUT/setup-$1" \
      --admin-password "$(cat "$2/initial-admin-password")" --gateway-url http://127.0.0.1:5070/sms/send > "$OUT/setup-$1.log"
}
bench() {  # label port pidfile concurrency offset users
  $PY bench_flow.py --base-url "http://127.0.0.1:$2" --gateway-url http://127.0.0.1:5070 --users "$6" --user-offset "$5" \
      --concurrency "$4" --duration "$DUR" --warmup 2 --mode txid --server-pid-file "$3" \
      --gateway-pid-file "$OUT/gateway.pid" --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1
}
fresh_pg() {
  local name="otpgate_bench_$1"
  psql "$PG_ADMIN" -qc "drop database if exists $name with (force)" >/dev/null
  psql "$PG_ADMIN" -qc "create database $name" >/dev/null
  echo "${PG_ADMIN%/*}/$name"
}

# 1. one node on SQLite
start_node sqlite 5091 "" "$OUT/data-sqlite"; setup 5091 "$OUT/data-sqlite"
bench sqlite-1node 5091 "$OUT/sqlite.toml.pid" 8 0 200
kill "$(cat "$OUT/sqlite.toml.pid")"

# 2. one node on PostgreSQL
PG=$(fresh_pg one)
start_node pg1 5092 "$PG" "$OUT/data-pg"; setup 5092 "$OUT/data-pg"
bench pg-1node 5092 "$OUT/pg1.toml.pid" 8 0 200

# 3. two nodes on that PostgreSQL database (shared key files), half of the users each
start_node pg2 5093 "$PG" "$OUT/data-pg"
bench pg-2nodes-a 5092 "$OUT/pg1.toml.pid" 4 0 100 &
A=$!
bench pg-2nodes-b 5093 "$OUT/pg2.toml.pid" 4 100 100
wait "$A"

$PY - "$OUT" <<'PYEOF'
import json, sys, os
out = sys.argv[1]
def load(n): return json.load(open(os.path.join(out, n + ".json")))
rows = [("1 node, SQLite", [load("sqlite-1node")]), ("1 node, PostgreSQL", [load("pg-1node")]),
        ("2 nodes, PostgreSQL", [load("pg-2nodes-a"), load("pg-2nodes-b")])]
print("| set-up | logins/s | failed | flow p50 / p95 ms | otpgate CPU ms per login | machine busy (2 cores) |")
print("|---|---:|---:|---|---:|---:|")
for label, runs in rows:
    rate = sum(r["rate_per_s"] for r in runs)
    failed = sum(r["failed"] for r in runs)
    p50 = max(r["latency_ms"]["flow"]["p50"] for r in runs)
    p95 = max(r["latency_ms"]["flow"]["p95"] for r in runs)
    cpu = sum(r["cpu"]["server_cpu_s"] for r in runs) * 1000 / max(1, sum(r["completed"] for r in runs))
    busy = max(r["cpu"]["system_busy_pct_all_cores"] for r in runs)
    print(f"| {label} | {rate:.0f} | {failed} | {p50:.0f} / {p95:.0f} | {cpu:.1f} | {busy:.0f} % |")
PYEOF
