# Sourced by the benchmark scripts. Before sourcing set ROOT, OUT, BIN and GW_PORT; then
# `bench_prepare` copies the peer harness into $OUT with its Python venv ($PY), starts its
# fake SMS gateway on $GW_PORT ($OUT/gateway.pid) and makes sure every process recorded in
# PIDS is stopped on exit. `admin_jwt PORT PASSWORD` prints an admin JWT of a running node.
PEER_SRC=${PEER_SRC:-$ROOT/../shared/peer}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }

bench_prepare() {
  [ -x "$BIN" ] || { echo "build first: cargo build --release --locked" >&2; exit 1; }
  rm -rf "$OUT" && mkdir -p "$OUT"
  cp -r "$PEER_SRC" "$OUT/peer" && chmod -R u+w "$OUT/peer"
  python3 -m venv "$OUT/venv" && "$OUT/venv/bin/pip" -q install aiohttp
  PY=$OUT/venv/bin/python
  trap cleanup EXIT
  cd "$OUT/peer"
  $PY fake_sms_gateway.py --port "$GW_PORT" > "$OUT/gateway.log" 2>&1 &
  local gw=$!
  PIDS+=("$gw")
  echo "$gw" > "$OUT/gateway.pid"
}

admin_jwt() {  # port password
  curl -fs "http://127.0.0.1:$1/auth" -d username=admin --data-urlencode "password=$2" \
    | $PY -c 'import json,sys; print(json.load(sys.stdin)["result"]["value"]["token"])'
}
