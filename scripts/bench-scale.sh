#!/usr/bin/env bash
# Does a login cost more when the node holds 100 000 users and tokens? One otpgate node
# (SQLite, the minimal PIN hash so that the figure measures the server), set up through the
# REST API (the peer harness's setup_peer.py: a passwd resolver and one SMS token per user),
# then full two-step logins with otpgate-load spread over all users (each worker walks its own
# users in turn, so with 100 000 users almost every login is a different user's). Once with
# 200 users, once with 100 000, one after the other on this machine; prints the ratio.
#
# Usage: scripts/bench-scale.sh [DURATION_SECONDS] [CONCURRENCY]   (defaults 20, 16;
#        SIZES="200 100000"; writes target/bench-scale/)
# Needs: a release build (cargo build --release --locked -p otpgate -p otpgate-load),
#        ../shared/peer, python3. Setting up 100 000 tokens takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-20}
C=${2:-16}
SIZES=${SIZES:-"200 100000"}
ROOT=$(pwd)
OUT=${OUT:-$ROOT/target/bench-scale}
BIN=${BIN:-$ROOT/target/release/otpgate}
LOAD=${LOAD:-$ROOT/target/release/otpgate-load}
PORT=5097
GW=127.0.0.1:5073
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: cargo build --release --locked -p otpgate -p otpgate-load" >&2; exit 1; }

. "$ROOT/scripts/bench-common.sh"
rm -rf "$OUT" && mkdir -p "$OUT"

for n in $SIZES; do
  dir=$OUT/$n
  mkdir -p "$dir"
  node_start "$dir/node.toml" "$PORT" fast
  node=$NODE
  node_lenient "$PORT" "$dir/data"
  pw=$(cat "$dir/data/initial-admin-password")
  t0=$(date +%s)
  python3 "$PEER_SRC/setup_peer.py" --base-url "http://127.0.0.1:$PORT" --users "$n" \
    --run-dir "$dir/setup" --admin-password "$pw" --parallel 8 \
    --gateway-url "http://$GW/sms/send" > "$dir/setup.log" 2>&1
  echo "$n users: set up in $(( $(date +%s) - t0 )) s; database $(du -m "$dir/data/otpgate.sqlite" | cut -f1) MiB"
  "$LOAD" --base-url "http://127.0.0.1:$PORT" --gateway-listen "$GW" --users "$n" -c "$C" \
    -d "$DUR" --warmup 3 --mode txid --server-pid "$node" --json "$dir/load.json" > "$dir/load.log" 2>&1
  head -n 2 "$dir/load.log"
  kill "$node"; wait "$node" 2>/dev/null || true
done

python3 - "$OUT" $SIZES <<'PYEOF'
import json, os, sys
out, sizes = sys.argv[1], sys.argv[2:]
runs = {n: json.load(open(os.path.join(out, n, "load.json"))) for n in sizes}
print("\n| users and tokens | logins/s | step-1 p99 ms | server CPU ms per login | server RSS MiB | errors |")
print("|---:|---:|---:|---:|---:|---:|")
for n, r in runs.items():
    errs = sum(v["count"] for v in r["errors"].values())
    print(f"| {int(n):,} | {r['rate_per_s']} | {r['latency_ms']['step1'].get('p99')} | {r['cpu'].get('server_cpu_ms_per_flow')} | {r.get('server_rss_max_mib')} | {errs} |")
small, big = runs[sizes[0]], runs[sizes[-1]]
print(f"\n{int(sizes[-1]):,} vs {int(sizes[0]):,}: {big['rate_per_s'] / small['rate_per_s']:.2f} of the throughput")
PYEOF
