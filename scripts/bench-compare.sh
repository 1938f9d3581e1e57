#!/usr/bin/env bash
# otpgate and privacyIDEA 3.14 side by side on this machine: the same 200 users, tokens and
# SMS gateway (set up through each server's REST API by the peer harness's setup_peer.py), the
# same load generator (otpgate-load, with its own receiving gateway), one server after the
# other, twice: (a) each server at its default PIN hash, (b) both with the same minimal PIN
# hash (Argon2id m=8 KiB, t=1, p=1), so the ratio measures the server rather than the hash.
# Then one otpgate node at the minimal hash on PostgreSQL (a fresh database on the server that
# BENCH_POSTGRES_URL names, by default the machine's at 127.0.0.1:5432; skipped when there is
# none), full logins, with the database server's own CPU: its ratio to the SQLite node.
#
# Usage: scripts/bench-compare.sh [DURATION_SECONDS] [CONCURRENCY]   (defaults 20, 16)
# Needs: ../shared/peer (privacyIDEA 3.14 is installed from PyPI into a throw-away venv there).
# Writes target/bench-compare/ (JSON per run, summary.md) and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-20}
C=${2:-16}
USERS=${USERS:-200}
ROOT=$(pwd)
OUT=$ROOT/target/bench-compare
PEER_SRC=${PEER_SRC:-$ROOT/../shared/peer}
GW=127.0.0.1:5071
OTP_PORT=5095

cargo build --release --locked -q -p otpgate -p otpgate-load
BIN=$ROOT/target/release/otpgate
LOAD=$ROOT/target/release/otpgate-load

rm -rf "$OUT" && mkdir -p "$OUT"
cp -r "$PEER_SRC" "$OUT/peer" && chmod -R u+w "$OUT/peer"
rm -rf "$OUT/peer/run" "$OUT/peer/.venv"
cd "$OUT/peer"
echo "installing privacyIDEA 3.14 from PyPI (once per run; log in $OUT/install.log)"
./install.sh > "$OUT/install.log" 2>&1
PY=$OUT/peer/.venv/bin/python

. "$ROOT/scripts/bench-common.sh"
PG_DB=""
stop_all() {
  cleanup
  for r in run/default run/fast; do PEER_RUN=$r ./stop_privacyidea.sh >/dev/null 2>&1 || true; done
  [ -z "$PG_DB" ] || psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" > /dev/null 2>&1 || true
}
trap stop_all EXIT

load() {  # label base-url pid mode
  "$LOAD" --base-url "$2" --gateway-listen "$GW" --users "$USERS" -c "$C" -d "$DUR" --warmup 3 \
    --mode "$4" --server-pid "$3" --json "$OUT/$1-$4.json" > "$OUT/$1-$4.log" 2>&1
  head -n 1 "$OUT/$1-$4.log"
}

run_pi() {  # profile (default|fast) port
  local run=run/$1
  PEER_RUN=$run PI_PORT=$2 PI_HASH_PROFILE=$1 ./init_privacyidea.sh > "$OUT/pi-$1-init.log" 2>&1
  PEER_RUN=$run PI_PORT=$2 ./start_privacyidea.sh > "$OUT/pi-$1-start.log" 2>&1
  $PY setup_peer.py --base-url "http://127.0.0.1:$2" --users "$USERS" --run-dir "$run" \
    --gateway-url "http://$GW/sms/send" > "$OUT/pi-$1-setup.log" 2>&1
  local pid
  pid=$(cat "$run/gunicorn.pid")
  load "privacyidea-$1" "http://127.0.0.1:$2" "$pid" txid
  load "privacyidea-$1" "http://127.0.0.1:$2" "$pid" step2
  PEER_RUN=$run ./stop_privacyidea.sh > /dev/null 2>&1 || true
}

run_otpgate() {  # profile (default|fast)
  local dir=$OUT/otpgate-$1
  mkdir -p "$dir"
  node_start "$dir/otpgate.toml" "$OTP_PORT" "$1"
  local pid=$NODE
  node_lenient "$OTP_PORT" "$dir/data"
  $PY setup_peer.py --base-url "http://127.0.0.1:$OTP_PORT" --users "$USERS" --run-dir "$dir/setup" \
    --admin-password "$(cat "$dir/data/initial-admin-password")" --gateway-url "http://$GW/sms/send" \
    > "$dir/setup.log" 2>&1
  load "otpgate-$1" "http://127.0.0.1:$OTP_PORT" "$pid" txid
  load "otpgate-$1" "http://127.0.0.1:$OTP_PORT" "$pid" step2
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

# One node on PostgreSQL, full logins; the database server's CPU (processes named postgres)
# counted over the timed part of the run.
PG_ADMIN=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
run_otpgate_pg() {
  local dir=$OUT/otpgate-pg db=otpgate_compare_$$
  if ! psql "$PG_ADMIN" -qc "CREATE DATABASE $db" > /dev/null 2>&1; then
    echo "no PostgreSQL reachable (BENCH_POSTGRES_URL): the PostgreSQL run is skipped"
    return
  fi
  PG_DB=$db  # dropped on exit (stop_all)
  # The admin URL's server and options, with the new database's name.
  local base=${PG_ADMIN%%\?*}
  local query=${PG_ADMIN#"$base"}
  mkdir -p "$dir"
  node_start "$dir/otpgate.toml" "$OTP_PORT" fast \
    "database_url = \"${base%/*}/$db${query:-?sslmode=disable}\""
  local pid=$NODE
  node_lenient "$OTP_PORT" "$dir/data"
  $PY setup_peer.py --base-url "http://127.0.0.1:$OTP_PORT" --users "$USERS" --run-dir "$dir/setup" \
    --admin-password "$(cat "$dir/data/initial-admin-password")" --gateway-url "http://$GW/sms/send" \
    > "$dir/setup.log" 2>&1
  load "otpgate-pg-fast" "http://127.0.0.1:$OTP_PORT" "$pid" txid &
  local loader=$!
  sleep 6  # past the warm-up
  local db0 t0 db1 t1
  db0=$(proc_cpu postgres); t0=$(date +%s.%N)
  wait "$loader"
  db1=$(proc_cpu postgres); t1=$(date +%s.%N)
  echo "{\"db_cpu_s\": $(awk "BEGIN { print $db1 - $db0 }"), \"seconds\": $(awk "BEGIN { print $t1 - $t0 }")}" > "$OUT/otpgate-pg-db.json"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for profile in default fast; do
  run_pi "$profile" 5001
  run_otpgate "$profile"
done
run_otpgate_pg

$PY - "$OUT" "$DUR" "$C" "$USERS" <<'PYEOF' | tee "$OUT/summary.md"
import json, sys, os
out, dur, c, users = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def j(name):
    with open(os.path.join(out, name + ".json")) as f:
        return json.load(f)
print(f"otpgate vs privacyIDEA 3.14, {users} users, concurrency {c}, {dur} s per run, one machine, one after the other\n")
print("| setting | mode | privacyIDEA /s | otpgate /s | ratio | step-1 p99 ms (pI / otpgate) | server CPU ms per flow (pI / otpgate) | server RSS MiB (pI / otpgate) | of it anonymous MiB (pI / otpgate) | loadgen share of machine | errors |")
print("|---|---|---:|---:|---:|---|---|---|---|---|---|")
for profile, label in [("default", "each at its default PIN hash"), ("fast", "same minimal PIN hash")]:
    for mode in ["txid", "step2"]:
        p, o = j(f"privacyidea-{profile}-{mode}"), j(f"otpgate-{profile}-{mode}")
        ratio = o["rate_per_s"] / p["rate_per_s"] if p["rate_per_s"] else float("inf")
        s1 = lambda r: r["latency_ms"]["step1"].get("p99", "-")
        cpu = lambda r: r["cpu"].get("server_cpu_ms_per_flow")
        rss = lambda r: r.get("server_rss_max_mib")
        anon = lambda r: r.get("server_rss_anon_max_mib")
        share = f'{p["cpu"].get("loadgen_share_of_machine")} / {o["cpu"].get("loadgen_share_of_machine")}'
        errs = f'{sum(v["count"] for v in p["errors"].values())} / {sum(v["count"] for v in o["errors"].values())}'
        print(f"| {label} | {mode} | {p['rate_per_s']} | {o['rate_per_s']} | {ratio:.1f}× | {s1(p)} / {s1(o)} | {cpu(p)} / {cpu(o)} | {rss(p)} / {rss(o)} | {anon(p)} / {anon(o)} | {share} | {errs} |")
if os.path.exists(os.path.join(out, "otpgate-pg-fast-txid.json")):
    s, g = j("otpgate-fast-txid"), j("otpgate-pg-fast-txid")
    db = j("otpgate-pg-db")
    db_ms = db["db_cpu_s"] * 1000 / max(1, g["rate_per_s"] * db["seconds"])
    print("\nOne otpgate node on PostgreSQL (the machine's server, on the same two cores), same minimal PIN hash, full logins:\n")
    print("| SQLite /s | PostgreSQL /s | PostgreSQL / SQLite | node CPU ms per flow (SQLite / PostgreSQL) | database server CPU ms per flow | errors |")
    print("|---:|---:|---:|---|---:|---|")
    errs = sum(v["count"] for v in g["errors"].values())
    print(f"| {s['rate_per_s']} | {g['rate_per_s']} | {100 * g['rate_per_s'] / s['rate_per_s']:.0f} % | {s['cpu'].get('server_cpu_ms_per_flow')} / {g['cpu'].get('server_cpu_ms_per_flow')} | {db_ms:.2f} | {errs} |")
PYEOF
