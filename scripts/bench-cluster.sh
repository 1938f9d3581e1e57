#!/usr/bin/env bash
# Does a second node on the same PostgreSQL database add throughput? Full two-step logins at the
# minimal PIN hash, driven by otpgate-load (its own receiving SMS gateway), on one fresh
# database of the server BENCH_POSTGRES_URL names (default: the machine's at 127.0.0.1:5432):
#
#   1. one node, no limit: the node, the database and the load generator share the machine;
#   2. one node held to NODE_CPU cores (default 0.3) by a CPU cgroup of its own;
#   3. two nodes, each held to NODE_CPU cores by a cgroup of its own, the requests going to them
#      in turn (a login's two steps may reach different nodes, as behind a load balancer).
#
# On a machine with two cores the nodes cannot get cores of their own beside the database and
# the load generator; the cgroups give each node a slice of its own instead, small enough that
# the nodes (not the database) are the limit: then 3. over 2. is what a second node adds.
# The database server's CPU (processes named postgres) is counted over each timed part.
#
# Usage: scripts/bench-cluster.sh [DURATION_SECONDS] [CONCURRENCY]   (defaults 20, 16)
# Needs: a release build (cargo build --release --locked -p otpgate -p otpgate-load),
#        ../shared/peer (setup_peer.py), psql; root for the CPU cgroups (cgroup v1 `cpu` or
#        v2 `cpu.max`; without them rows 2 and 3 run unlimited and say so).
# Writes target/bench-cluster/ (JSON per run, summary.md) and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-20}
C=${2:-16}
USERS=${USERS:-200}
NODE_CPU=${NODE_CPU:-0.3}
ROOT=$(pwd)
OUT=$ROOT/target/bench-cluster
BIN=$ROOT/target/release/otpgate
LOAD=$ROOT/target/release/otpgate-load
GW=127.0.0.1:5073
PG_ADMIN=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: cargo build --release --locked -p otpgate -p otpgate-load" >&2; exit 1; }

. "$ROOT/scripts/bench-common.sh"
rm -rf "$OUT" && mkdir -p "$OUT"
DB=otpgate_cluster_$$
GROUPS_MADE=()
finish() {
  cleanup
  sleep 0.5
  for g in "${GROUPS_MADE[@]}"; do rmdir "$g" 2>/dev/null || true; done
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" > /dev/null 2>&1 || true
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" > /dev/null
BASE=${PG_ADMIN%%\?*}
QUERY=${PG_ADMIN#"$BASE"}
DB_URL="${BASE%/*}/$DB${QUERY:-?sslmode=disable}"

# `limit_cpu PID NAME`: holds PID to NODE_CPU cores with a CPU cgroup of its own; sets
# LIMITED to "limited" or "unlimited". (Not called in a subshell: it records the groups it
# made, which `finish` removes.)
limit_cpu() {
  local quota
  quota=$(awk "BEGIN { printf \"%d\", $NODE_CPU * 100000 }")
  local v1=/sys/fs/cgroup/cpu/otpgate-bench-$2 v2=/sys/fs/cgroup/otpgate-bench-$2
  LIMITED=unlimited
  if [ -d /sys/fs/cgroup/cpu ] && mkdir -p "$v1" 2>/dev/null; then
    GROUPS_MADE+=("$v1")
    echo 100000 > "$v1/cpu.cfs_period_us" && echo "$quota" > "$v1/cpu.cfs_quota_us" \
      && echo "$1" > "$v1/cgroup.procs" && LIMITED=limited
  elif [ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir -p "$v2" 2>/dev/null; then
    GROUPS_MADE+=("$v2")
    echo "$quota 100000" > "$v2/cpu.max" && echo "$1" > "$v2/cgroup.procs" && LIMITED=limited
  fi
  return 0
}

# The nodes share the database and the data directory (the key files).
node_config() {  # name port
  cat > "$OUT/$1.toml" <<TOML
[server]
listen = "127.0.0.1:$2"
data_dir = "$OUT/data"
database_url = "$DB_URL"
rate_limit_per_sec = 0.0
[security]
pin_hash = { memory_kib = 8, iterations = 1, parallelism = 1 }
[log]
level = "warn"
TOML
}
node_config a 5097
node_config b 5098

# `nodes NAME…`: starts the named nodes as children of one process (GROUP), so the load
# generator's --server-pid counts their CPU together; waits for their /healthz.
nodes() {
  for n in "$@"; do rm -f "$OUT/$n.pid"; done
  (
    for n in "$@"; do
      "$BIN" --config "$OUT/$n.toml" serve > "$OUT/$n.out" 2> "$OUT/$n.err" &
      echo $! > "$OUT/$n.pid"
    done
    wait
  ) &
  GROUP=$!; PIDS+=("$GROUP")
  for n in "$@"; do
    local port
    port=$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$OUT/$n.toml")
    local up=""
    for _ in $(seq 1 100); do
      [ -s "$OUT/$n.pid" ] && curl -fs "http://127.0.0.1:$port/healthz" > /dev/null && { up=1; break; }
      sleep 0.1
    done
    [ -s "$OUT/$n.pid" ] && PIDS+=("$(cat "$OUT/$n.pid")")
    [ -n "$up" ] || { echo "node $n did not start (see $OUT/$n.err)" >&2; exit 1; }
  done
}
# `stop_nodes NAME…`: ends the named nodes (by PID) and their group; forgets their PIDs.
stop_nodes() {
  local gone=("$GROUP")
  for n in "$@"; do
    gone+=("$(cat "$OUT/$n.pid")")
    kill "${gone[-1]}" 2>/dev/null || true
  done
  wait "$GROUP" 2>/dev/null || true
  local keep=() p g
  for p in "${PIDS[@]}"; do
    for g in "${gone[@]}"; do [ "$p" = "$g" ] && continue 2; done
    keep+=("$p")
  done
  PIDS=("${keep[@]}")
}

# `run LABEL URL…`: the load against the nodes of GROUP, with the database's CPU.
run() {
  local label=$1; shift
  local urls=()
  for u in "$@"; do urls+=(--base-url "$u"); done
  "$LOAD" "${urls[@]}" --gateway-listen "$GW" --users "$USERS" -c "$C" -d "$DUR" --warmup 3 \
    --mode txid --server-pid "$GROUP" --json "$OUT/$label.json" > "$OUT/$label.log" 2>&1 &
  local loader=$! db0 t0 db1 t1
  PIDS+=("$loader")
  sleep 5  # past the warm-up
  db0=$(proc_cpu postgres); t0=$(date +%s.%N)
  wait "$loader"
  db1=$(proc_cpu postgres); t1=$(date +%s.%N)
  echo "{\"db_cpu_s\": $(awk "BEGIN { print $db1 - $db0 }"), \"seconds\": $(awk "BEGIN { print $t1 - $t0 }")}" > "$OUT/$label-db.json"
  head -n 1 "$OUT/$label.log"
}

# Set-up through node a: users, tokens, the gateway pointing at the load generator.
nodes a
node_lenient 5097 "$OUT/data"
python3 "$PEER_SRC/setup_peer.py" --base-url "http://127.0.0.1:5097" --users "$USERS" \
  --run-dir "$OUT/setup" --admin-password "$(cat "$OUT/data/initial-admin-password")" \
  --parallel 8 --gateway-url "http://$GW/sms/send" > "$OUT/setup.log" 2>&1

run one-node http://127.0.0.1:5097
limit_cpu "$(cat "$OUT/a.pid")" a
echo "node a: $LIMITED to $NODE_CPU cores" | tee "$OUT/limits.txt"
run one-node-limited http://127.0.0.1:5097
stop_nodes a

nodes a b
limit_cpu "$(cat "$OUT/a.pid")" a; A_LIMITED=$LIMITED
limit_cpu "$(cat "$OUT/b.pid")" b
echo "nodes a, b: $A_LIMITED, $LIMITED to $NODE_CPU cores each" | tee -a "$OUT/limits.txt"
run two-nodes-limited http://127.0.0.1:5097 http://127.0.0.1:5098
stop_nodes a b

python3 - "$OUT" "$NODE_CPU" <<'PYEOF' | tee "$OUT/summary.md"
import json, os, sys
out, cpu = sys.argv[1], sys.argv[2]
def j(n): return json.load(open(os.path.join(out, n + ".json")))
print(f"Full logins at the minimal PIN hash, one PostgreSQL database; {open(os.path.join(out, 'limits.txt')).read().strip()}\n")
print("| set-up | logins/s | nodes' CPU ms per login | database CPU ms per login | step-1 p99 ms | errors |")
print("|---|---:|---:|---:|---:|---|")
rows = [("one node, no limit", "one-node"), (f"one node, {cpu} cores", "one-node-limited"),
        (f"two nodes, {cpu} cores each", "two-nodes-limited")]
rates = {}
for label, name in rows:
    r, db = j(name), j(name + "-db")
    rates[name] = r["rate_per_s"]
    db_ms = db["db_cpu_s"] * 1000 / max(1, r["rate_per_s"] * db["seconds"])
    errs = sum(v["count"] for v in r["errors"].values())
    print(f"| {label} | {r['rate_per_s']} | {r['cpu'].get('server_cpu_ms_per_flow')} | {db_ms:.2f} | {r['latency_ms']['step1'].get('p99', '-')} | {errs} |")
if rates.get("one-node-limited"):
    print(f"\nThe second node: {rates['two-nodes-limited'] / rates['one-node-limited']:.2f}× the limited node's logins/s.")
PYEOF
