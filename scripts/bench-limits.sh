#!/usr/bin/env bash
# What the send limits cost a normal login: one otpgate node (SQLite), the peer harness's
# bench_flow.py (the whole two-step loop with SMS pickup), alternating runs with every send
# limit counted (set so high that none refuses) and with all limits and the resend cooldown
# off. Three rounds each, side by side in one run, so the figures are ratios on one machine.
#
# Usage: scripts/bench-limits.sh [DURATION_SECONDS]   (default 15; writes target/bench-limits/)
# Needs: a release build (cargo build --release --locked), ../shared/peer, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15}
ROOT=$(pwd)
OUT=${OUT:-$ROOT/target/bench-limits}
BIN=${BIN:-$ROOT/target/release/otpgate}
GW_PORT=5071
. "$ROOT/scripts/bench-common.sh"
bench_prepare

PORT=5094
node_start "$OUT/node.toml" "$PORT" fast
cp "$OUT/node.toml.pid" "$OUT/node.pid"
node_lenient "$PORT" "$OUT/data"
$PY setup_peer.py --base-url "http://127.0.0.1:$PORT" --users 200 --run-dir "$OUT/setup" \
    --admin-password "$(cat "$OUT/data/initial-admin-password")" \
    --gateway-url http://127.0.0.1:5071/sms/send > "$OUT/setup.log"

limits() {  # value for every limit, resend cooldown
  curl -fs -H "Authorization: $JWT" "http://127.0.0.1:$PORT/system/setConfig" \
    -d "sms.limit.user=$1" -d "sms.limit.phone=$1" -d "sms.limit.prefix=$1" \
    -d "sms.limit.client=$1" -d "sms.limit.global=$1" -d "sms.limit.country=$1" \
    -d "sms.resend_cooldown_secs=$2" >/dev/null
}
bench() {  # label
  $PY bench_flow.py --base-url "http://127.0.0.1:$PORT" --gateway-url http://127.0.0.1:5071 --users 200 \
      --concurrency 8 --duration "$DUR" --warmup 2 --mode txid --server-pid-file "$OUT/node.pid" \
      --gateway-pid-file "$OUT/gateway.pid" --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1
}
ROUNDS=${ROUNDS:-3}
for round in $(seq 1 "$ROUNDS"); do
  limits 0 0;                bench "off-$round"
  limits 10000000/600 30;    bench "on-$round"
  if [ -n "${SPLIT:-}" ]; then  # where the cost is: limits alone, the cooldown check alone
    limits 10000000/600 0;   bench "limits-$round"
    limits 0 30;             bench "cooldown-$round"
  fi
done

$PY - "$OUT" <<'PYEOF'
import json, sys, os
out = sys.argv[1]
def load(n): return json.load(open(os.path.join(out, n + ".json")))
print("| run | limits | logins/s | failed | flow p50 / p95 ms | otpgate CPU ms per login |")
print("|---|---|---:|---:|---|---:|")
arms = ["off", "on"] + (["limits", "cooldown"] if os.path.exists(os.path.join(out, "limits-1.json")) else [])
rounds = sorted({int(n.split("-")[1].split(".")[0]) for n in os.listdir(out) if n.startswith("off-") and n.endswith(".json")})
tot = {a: [0, 0, 0] for a in arms}
for r in rounds:
    for arm in arms:
        j = load(f"{arm}-{r}")
        cpu = j["cpu"]["server_cpu_s"] * 1000 / max(1, j["completed"])
        f = j["latency_ms"]["flow"]
        print(f"| {r} | {arm} | {j['rate_per_s']:.0f} | {j['failed']} | {f['p50']:.0f} / {f['p95']:.0f} | {cpu:.2f} |")
        t = tot[arm]; t[0] += j["rate_per_s"]; t[1] += j["cpu"]["server_cpu_s"]; t[2] += j["completed"]
off = tot["off"]
for arm in arms[1:]:
    t = tot[arm]
    print(f"\n{arm}/off: logins/s {t[0] / off[0]:.3f}, CPU per login {(t[1] / t[2]) / (off[1] / off[2]):.3f}")
PYEOF
