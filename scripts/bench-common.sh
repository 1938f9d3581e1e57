# Sourced by the benchmark scripts. Before sourcing set ROOT, OUT, BIN and GW_PORT; then
# `bench_prepare` copies the peer harness into $OUT with its Python venv ($PY), starts its
# fake SMS gateway on $GW_PORT ($OUT/gateway.pid) and makes sure every process recorded in
# PIDS is stopped on exit. `admin_jwt PORT PASSWORD` prints an admin JWT of a running node;
# `node_start` starts one otpgate node and `node_lenient` gives it privacyIDEA's behaviour for
# benchmarks.
PEER_SRC=${PEER_SRC:-$ROOT/../shared/peer}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# `node_start CONFIG PORT HASH [LINES]`: writes the node's config file CONFIG (data in
# CONFIG's folder/data unless LINES name a data_dir; HASH is `fast`, the minimal PIN hash,
# or `default`; LINES go into [server]), starts it (pid in NODE and CONFIG.pid)
# and waits for /healthz.
node_start() {
  local data="" hash=""
  case "${4:-}" in *data_dir*) ;; *) data="data_dir = \"$(dirname "$1")/data\"" ;; esac
  case "$3" in
    fast) hash='pin_hash = { memory_kib = 8, iterations = 1, parallelism = 1 }' ;;
    default) ;;
    *) echo "node_start: the PIN hash is fast or default, not $3" >&2; exit 1 ;;
  esac
  cat > "$1" <<TOML
[server]
listen = "127.0.0.1:$2"
$data
# The load comes from one address; the per-address limit would measure itself.
rate_limit_per_sec = 0.0
${4:-}
[security]
$hash
[log]
level = "warn"
TOML
  "$BIN" --config "$1" serve > "$1.out" 2> "$1.err" &
  NODE=$!; PIDS+=("$NODE"); echo "$NODE" > "$1.pid"
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$2/healthz" >/dev/null && return; sleep 0.1; done
  echo "the node of $1 did not start" >&2; exit 1
}

# `node_lenient PORT DATA_DIR`: sets JWT to an admin token of the node, then turns on lenient
# number checks and turns off the send limits and the resend cooldown: the harness enrols
# made-up numbers (+49151 and 7 digits) and logs the same users in again and again, as
# privacyIDEA allows.
node_lenient() {
  JWT=$(admin_jwt "$1" "$(cat "$2/initial-admin-password")")
  curl -fs -H "Authorization: $JWT" "http://127.0.0.1:$1/system/setConfig" \
    -d sms.number_check=lenient -d sms.limit.user=0 -d sms.limit.phone=0 -d sms.limit.prefix=0 \
    -d sms.limit.global=0 -d sms.limit.client=0 -d sms.resend_cooldown_secs=0 > /dev/null
}

bench_prepare() {
  [ -x "$BIN" ] || { echo "build first: cargo build --release --locked" >&2; exit 1; }
  rm -rf "$OUT" && mkdir -p "$OUT"
  cp -r "$PEER_SRC" "$OUT/peer" && chmod -R u+w "$OUT/peer"
  python3 -m venv "$OUT/venv" && "$OUT/venv/bin/pip" -q install aiohttp
  PY=$OUT/venv/bin/python
  cd "$OUT/peer"
  $PY fake_sms_gateway.py --port "$GW_PORT" > "$OUT/gateway.log" 2>&1 &
  local gw=$!
  PIDS+=("$gw")
  echo "$gw" > "$OUT/gateway.pid"
}

admin_jwt() {  # port password
  curl -fs "http://127.0.0.1:$1/auth" -d username=admin --data-urlencode "password=$2" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["value"]["token"])'
}

# CPU seconds of every process named $1 (utime + stime from /proc, clock ticks of 1/100 s).
proc_cpu() {
  awk -v name="$1" '{ sub(/^[0-9]+ \(/, ""); split($0, a, /\) /); if (a[1] == name) { split(a[2], f, " "); t += f[12] + f[13] } } END { printf "%.2f", t / 100 }' /proc/[0-9]*/stat 2>/dev/null
}
