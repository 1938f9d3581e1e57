#!/usr/bin/env bash
# Where one otpgate node spends its CPU under load: starts a node (SQLite), sets up USERS users
# with SMS tokens through the REST API (the peer harness's setup_peer.py, standard library
# only), drives it with otpgate-load in MODE and records the node with `perf record`
# (cpu-clock, DWARF call graphs). Prints the top functions by self time and by inclusive
# time, and the load report.
#
# Usage: scripts/bench-profile.sh [MODE] [DURATION_SECONDS] [CONCURRENCY]
#        (defaults step2, 15, 16; HASH=default profiles at the default PIN hash, HASH=fast
#        (the default) at the minimal one; USERS=200; SERVER_EXTRA adds lines to [server]; PERF=0 skips perf;
#        DB_CPU=postgres also reports the CPU the processes of that name (a local database
#        server) used per flow; writes target/bench-profile/)
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
PORT=5096
GW=127.0.0.1:5072
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: cargo build --release --locked -p otpgate -p otpgate-load" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }

. "$ROOT/scripts/bench-common.sh"
rm -rf "$OUT" && mkdir -p "$OUT"
node_start "$OUT/node.toml" "$PORT" "${HASH:-fast}" "${SERVER_EXTRA:-}"
node_lenient "$PORT" "$OUT/data"
python3 "$PEER_SRC/setup_peer.py" --base-url "http://127.0.0.1:$PORT" --users "$USERS" \
  --run-dir "$OUT/setup" --admin-password "$(cat "$OUT/data/initial-admin-password")" \
  --parallel "${SETUP_PARALLEL:-8}" --gateway-url "http://$GW/sms/send" > "$OUT/setup.log" 2>&1

"$LOAD" --base-url "http://127.0.0.1:$PORT" --gateway-listen "$GW" --users "$USERS" -c "$C" \
  -d "$DUR" --warmup 3 --mode "$MODE" --server-pid "$NODE" --json "$OUT/load.json" \
  > "$OUT/load.log" 2>&1 &
LOADPID=$!; PIDS+=("$LOADPID")
[ -z "${DB_CPU:-}" ] || { sleep "${PERF_DELAY:-6}"; DB0=$(proc_cpu "$DB_CPU"); T0=$(date +%s.%N); PERF_DELAY=0; }
# Record the timed part only (after the warm-up and, in step2 mode, the untimed challenges).
sleep "${PERF_DELAY:-6}"
[ "${PERF:-1}" = 0 ] || perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$NODE" -o "$OUT/perf.data" \
  -- sleep "$((DUR / 2))" > "$OUT/perf-record.log" 2>&1 || true
wait "$LOADPID"
if [ -n "${DB_CPU:-}" ]; then
  DB1=$(proc_cpu "$DB_CPU"); T1=$(date +%s.%N)
  python3 - "$OUT/load.json" "$DB0" "$DB1" "$T0" "$T1" <<'PYEOF' | tee "$OUT/db-cpu.txt"
import json, sys
d = json.load(open(sys.argv[1]))
measured = float(sys.argv[5]) - float(sys.argv[4])  # the sampled part of the run (steady rate)
rate = d["rate_per_s"]
used = float(sys.argv[3]) - float(sys.argv[2])
print(f"database CPU: {used:.2f} s in the last {measured:.0f} s, {used * 1000 / max(1, rate * measured):.2f} ms per flow")
PYEOF
fi
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0.7 \
  2> /dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/ +- +- *$//' > "$OUT/self.txt" || true
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none --percent-limit 3 \
  2> /dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/ +- +- *$//' > "$OUT/inclusive.txt" || true
echo "== load"; head -n 3 "$OUT/load.log"
echo "== self time (top)"; head -n 40 "$OUT/self.txt"
echo "== inclusive time (top)"; head -n 60 "$OUT/inclusive.txt"
