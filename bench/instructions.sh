#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: deterministic to ~0.1% from run to
# run, where CPU time on this shared 2-core machine moves by ±30%. Use it for A/B comparisons of
# a change on the hot path (the CPU-time scripts stay the measure of the targets: kernel time,
# which callgrind does not see, is a third of a proxied call).
#
# Usage: bash bench/instructions.sh [free|402] [calls=2000]
#   free: a proxied getBalance on the standard route (bench/proxy.toml, instant upstream);
#   402:  an unpaid call to a paid method route (bench/challenge.toml; needs node for the key).
# GATEWAY_BIN=<binary> measures another build. Needs valgrind and python3. The gateway runs
# under callgrind (~50x slower); 500 warm-up calls, then the counters are zeroed, then <calls>
# calls on one keep-alive connection, then the counters are dumped and divided.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-free}
CALLS=${2:-2000}
command -v valgrind >/dev/null || { echo "valgrind is required: apt-get install valgrind" >&2; exit 1; }
cargo build --release --no-default-features --quiet --example bench_upstream --bin x402-gateway
BIN=${GATEWAY_BIN:-target/release/x402-gateway}

case "$MODE" in
  free)
    CONFIG=bench/proxy.toml PORT=9902 PATH_=/v1/x402/solana/devnet/rpc STATUS=200
    BODY='{"jsonrpc":"2.0","id":1,"method":"getBalance","params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}'
    ;;
  402)
    CONFIG=bench/challenge.toml PORT=9903 PATH_=/v1/x402/solana/devnet/bench/rpc/getBalance STATUS=402
    BODY='{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}'
    FEE_PAYER_KEY=$(node -e '
      const { generateKeyPairSync } = require("node:crypto");
      const k = generateKeyPairSync("ed25519");
      const secret = k.privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
      const pub = k.publicKey.export({ format: "der", type: "spki" }).subarray(-32);
      console.log(JSON.stringify([...secret, ...pub]));')
    export FEE_PAYER_KEY
    ;;
  *) echo "mode is free or 402" >&2; exit 1 ;;
esac

OUT=$(mktemp -d /tmp/instructions.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT

target/release/examples/bench_upstream 127.0.0.1:9901 0 & PIDS+=($!)
valgrind --tool=callgrind -q --callgrind-out-file="$OUT/cg.%p" "$BIN" --config "$CONFIG" serve \
  >"$OUT/gateway.log" 2>&1 & GW=$!; PIDS+=($GW)

calls() { # n: POSTs on one keep-alive connection, each must answer $STATUS
  python3 - "$1" "$PORT" "$PATH_" "$BODY" "$STATUS" <<'EOF'
import http.client, sys
n, port, path, body, status = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    c.request("POST", path, body, {"content-type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != status:
        sys.exit(f"expected HTTP {status}, got {r.status}")
EOF
}
for _ in $(seq 300); do calls 1 2>/dev/null && break; sleep 0.2; done
calls 1 || { echo "the gateway does not answer HTTP $STATUS:" >&2; tail -5 "$OUT/gateway.log" >&2; exit 1; }
calls 500
callgrind_control -z "$GW" >/dev/null 2>&1
calls "$CALLS"
callgrind_control -d "$GW" >/dev/null 2>&1
for _ in $(seq 50); do ls "$OUT"/cg.*.1 >/dev/null 2>&1 && break; sleep 0.1; done
IR=$(awk '/^(summary|totals):/ { v = $2 } END { print v }' "$OUT"/cg.*.1)
echo "$MODE: $IR instructions (user space) over $CALLS calls = $((IR / CALLS)) per call ($(basename "$BIN"))"
