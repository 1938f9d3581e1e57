#!/usr/bin/env bash
# Where one otpgate node spends its CPU under load: starts a node (SQLite), sets up USERS users
# with SMS tokens through the REST API (the peer harness's setup_peer.py, standard library
# only), drives it with otpgate-load in MODE and records the node with `perf record`
# (cpu-clock, DWARF call graphs). Prints the top functions by self time and by inclusive
# time, and the load report.
#
# Usage: scripts/bench-profile.sh [MODE] [DURATION_SECONDS] [CONCURRENCY]
#        (defaults step2, 15, 16; HASH=default profiles at the default PIN hash, else the
#        minimal one; USERS=200; writes target/bench-profile/)
# Needs: a release build (cargo build --release --locked -p otpgate -p otpgate-load),
#        Debian's linux-perf, ../shared/peer.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-step2}
DUR=${2:-15}
C=${3:-16}
USERS=${USERS:-200}
ROOT=$(pwd)
OUT=${OUT:-$ROOT/target/bench-profile}
BIN=${BIN:-$ROOT/target/release/otpgate}
LOAD=${LOAD:-$ROOT/target/release/otpgate-load}
PEER_SRC=${PEER_SRC:-$ROOT/../shared/peer}
PORT=5096
GW=127.0.0.1:5072
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: cargo build --release --locked -p otpgate -p otpgate-load" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
hash='pin_hash = { memory_kib = 8, iterations = 1, parallelism = 1 }'
[ "${HASH:-fast}" = default ] && hash=''
cat > "$OUT/node.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
data_dir = "$OUT/data"
# The load comes from one address.
rate_limit_per_sec = 0.0
[security]
$hash
[log]
level = "warn"
TOML
"$BIN" --config "$OUT/node.toml" serve > "$OUT/node.out" 2> "$OUT/node.err" &
NODE=$!; PIDS+=("$NODE")
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
PW=$(cat "$OUT/data/initial-admin-password")
JWT=$(curl -fs "http://127.0.0.1:$PORT/auth" -d username=admin --data-urlencode "password=$PW" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["value"]["token"])')
# The harness logs the same made-up numbers in again and again: lenient number checks, no
# send limits, no resend cooldown (as in bench-compare.sh).
curl -fs -H "Authorization: $JWT" "http://127.0.0.1:$PORT/system/setConfig" \
  -d sms.number_check=lenient -d sms.limit.user=0 -d sms.limit.phone=0 -d sms.limit.prefix=0 \
  -d sms.limit.global=0 -d sms.limit.client=0 -d sms.resend_cooldown_secs=0 > /dev/null
python3 "$PEER_SRC/setup_peer.py" --base-url "http://127.0.0.1:$PORT" --users "$USERS" \
  --run-dir "$OUT/setup" --admin-password "$PW" --parallel "${SETUP_PARALLEL:-8}" \
  --gateway-url "http://$GW/sms/send" > "$OUT/setup.log" 2>&1

"$LOAD" --base-url "http://127.0.0.1:$PORT" --gateway-listen "$GW" --users "$USERS" -c "$C" \
  -d "$DUR" --warmup 3 --mode "$MODE" --server-pid "$NODE" --json "$OUT/load.json" \
  > "$OUT/load.log" 2>&1 &
LOADPID=$!; PIDS+=("$LOADPID")
# Record the timed part only (after the warm-up and, in step2 mode, the untimed challenges).
sleep "${PERF_DELAY:-6}"
perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$NODE" -o "$OUT/perf.data" \
  -- sleep "$((DUR / 2))" > "$OUT/perf-record.log" 2>&1 || true
wait "$LOADPID"
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0.7 \
  2> /dev/null | grep -v '^#' | grep -v '^$' > "$OUT/self.txt" || true
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none --percent-limit 3 \
  2> /dev/null | grep -v '^#' | grep -v '^$' > "$OUT/inclusive.txt" || true
echo "== load"; head -n 3 "$OUT/load.log"
echo "== self time (top)"; head -n 40 "$OUT/self.txt"
echo "== inclusive time (top)"; head -n 60 "$OUT/inclusive.txt"
