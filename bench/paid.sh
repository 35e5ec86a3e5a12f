#!/usr/bin/env bash
# Paid-call benchmark, end to end on a real (local) chain: the gateway and the official x402
# reference server side by side, both settling every payment on the same local Solana cluster,
# run as its own process (`x402-gateway localnet`, LiteSVM: real ed25519-signed transfers
# executed by the real SPL Token program, confirmed at once).
#
#   gateway:   bench/paid.toml (payments on, the in-process facilitator, the memory store and the
#              SQLite ledger: the embedded default), selling the cluster's own getBalance
#              (forwarded to the cluster) at its price (the floor plus the settlement cost);
#   reference: bench/reference/server.mjs, `@x402/hono` 2.27.0 with the official facilitator
#              in process (`x402Facilitator` of @x402/core + `registerExactSvmScheme` of
#              @x402/svm 2.27.0), the gateway's price (PRICE, read from its 402), network,
#              asset and payTo, answering a fixed body.
#
# The load generator is examples/bench_payer.rs: every call carries a fresh payment signed by
# this crate's paying client (src/client/payer.rs) from one of 32 wallets funded at the cluster's
# genesis, and must come back 200 with a PAYMENT-RESPONSE receipt. It reads the server's CPU
# time (utime + stime from /proc) around each run: server CPU per paid call.
#
# Usage:
#   bash bench/paid.sh [seconds=10] [rounds=1]   concurrency 1, 8 and 32, gateway vs reference
#   bash bench/paid.sh rss [calls=100000]        the gateway's RSS idle and after N paid calls
#   bash bench/paid.sh flat [seconds=300] [window=30] [concurrency=32]
#                                                the gateway's CPU per paid call window by window
#                                                over one long run (flat or growing?), with RSS
#
# Servers (gateway, reference) are confined to CPU 1; the cluster and the load generator to
# CPU 0 (taskset), so the servers' CPU is their own. Needs node 20+ and curl;
# `npm ci --prefix bench/reference` is run when node_modules is missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=compare
case "${1:-}" in rss | flat) MODE=$1; shift ;; esac
GW=127.0.0.1:9906
REF=127.0.0.1:9907
RPC=http://127.0.0.1:9910
ROUTE=/v1/x402/solana/devnet/bench/rpc/getBalance
DIR=target/bench-paid
WALLETS=32

command -v node >/dev/null || { echo "node 20+ is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }
[ "$(getconf CLK_TCK)" = 100 ] || { echo "bench_payer assumes a 100 Hz clock tick" >&2; exit 1; }
[ -d bench/reference/node_modules/@x402/svm ] || npm ci --prefix bench/reference --no-audit --no-fund
# The default features: `x402-gateway localnet` needs the embedded cluster.
# GATEWAY_BIN: the gateway binary to measure (an A/B comparison of two builds); the local
# cluster and the clients always come from this checkout's release build.
cargo build --release --quiet --bin x402-gateway --example bench_payer

rm -rf "$DIR"; mkdir -p "$DIR/keys"
{
  echo '[localnet]'
  echo 'listen = "127.0.0.1:9910"'
  echo 'pay_to = "vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"'
  echo "keypair_dir = \"$DIR/keys\""
  echo "fee_payers = [\"$DIR/keys/gateway-fee-payer.json\", \"$DIR/keys/reference-fee-payer.json\"]"
  echo 'fee_payer_lamports = 1000000000000'
  for i in $(seq "$WALLETS"); do
    echo '[[localnet.wallets]]'
    echo "keypair = \"$DIR/keys/wallet-$i.json\""
    echo 'usdc = 100000000000'
  done
} > "$DIR/localnet.toml"
WALLET_ARGS=()
for i in $(seq "$WALLETS"); do WALLET_ARGS+=(--wallet "$DIR/keys/wallet-$i.json"); done

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

SERVER_CPU=1; LOAD_CPU=0
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; fi
taskset -c "$LOAD_CPU" target/release/x402-gateway --config "$DIR/localnet.toml" localnet >"$DIR/localnet.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -fs -X POST -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"getSlot"}' "$RPC" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs -X POST -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"getSlot"}' "$RPC" >/dev/null ||
  { echo "the local cluster did not start:" >&2; cat "$DIR/localnet.log" >&2; exit 1; }

challenge() { # url → HTTP status of an unpaid POST
  curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d '{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}' "$1"
}
wait402() { # url name
  for _ in $(seq 150); do [ "$(challenge "$1")" = 402 ] && return 0; sleep 0.1; done
  echo "$2 did not answer 402" >&2; exit 1
}
FEE_PAYER_KEY=$(cat "$DIR/keys/gateway-fee-payer.json") taskset -c "$SERVER_CPU" \
  "${GATEWAY_BIN:-target/release/x402-gateway}" --config bench/paid.toml serve >"$DIR/gateway.log" 2>&1 &
GW_PID=$!; PIDS+=($GW_PID)
wait402 "http://$GW$ROUTE" gateway
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

payer() { # url pid concurrency [bench_payer args...] → bench_payer's output
  local url=$1 pid=$2 conc=$3; shift 3
  taskset -c "$LOAD_CPU" target/release/examples/bench_payer --url "$url" --rpc "$RPC" \
    "${WALLET_ARGS[@]}" --concurrency "$conc" --server-pid "$pid" "$@" 2> >(grep -v '^bench_payer: paying' >&2)
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; } # name → value of name=value on the summary line

echo "machine: $(nproc) cores, $(uname -m), node $(node --version), load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "servers on CPU $SERVER_CPU (gateway 1 worker thread, reference one Node process), cluster and bench_payer on CPU $LOAD_CPU"

if [ "$MODE" = rss ]; then
  CALLS=${1:-100000}
  IDLE=$(rss_kib "$GW_PID")
  echo "gateway RSS idle (after start, one 402): $((IDLE / 1024)) MiB"
  OUT=$(payer "http://$GW$ROUTE" "$GW_PID" 32 --calls "$CALLS" --window 30)
  echo "$OUT"
  S=$(grep '^summary' <<<"$OUT")
  sleep 2
  AFTER=$(rss_kib "$GW_PID")
  echo "gateway RSS after $(field ok <<<"$S") paid calls ($(field failed <<<"$S") failed): $((AFTER / 1024)) MiB" \
    "(${AFTER} KiB; target <= 64 MiB), idle $((IDLE / 1024)) MiB"
  exit 0
fi

if [ "$MODE" = flat ]; then
  SECS=${1:-300}; WINDOW=${2:-30}; CONC=${3:-32}
  echo "gateway RSS idle: $(( $(rss_kib "$GW_PID") / 1024 )) MiB; $SECS s at concurrency $CONC, windows of $WINDOW s"
  payer "http://$GW$ROUTE" "$GW_PID" "$CONC" --seconds "$SECS" --window "$WINDOW"
  exit 0
fi

# compare: the reference server with its official facilitator, then both at 1, 8, 32.
DURATION=${1:-10}
ROUNDS=${2:-1}
# The reference sells at the gateway's price (its floor includes the settlement cost).
PRICE=$(curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' \
  -d '{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}' "http://$GW$ROUTE" |
  tr -d '\r' | awk -F': ' 'tolower($1) == "payment-required" { print $2 }' | base64 -d | jq -r '.accepts[0].amount')
echo "price: $PRICE atomic units on both servers"
PORT=${REF##*:} FRAMEWORK=hono PRICE=$PRICE SOLANA_RPC=$RPC FEE_PAYER_KEYPAIR="$DIR/keys/reference-fee-payer.json" \
  PAY_TO=vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg MINT=4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU \
  taskset -c "$SERVER_CPU" node bench/reference/server.mjs >"$DIR/reference.log" 2>&1 &
REF_PID=$!; PIDS+=($REF_PID)
wait402 "http://$REF$ROUTE" "the reference server"
echo "RSS idle: gateway $(( $(rss_kib "$GW_PID") / 1024 )) MiB, reference $(( $(rss_kib "$REF_PID") / 1024 )) MiB"
# Warm both (JIT, pools, caches).
payer "http://$GW$ROUTE" "$GW_PID" 8 --seconds 3 >/dev/null
payer "http://$REF$ROUTE" "$REF_PID" 8 --seconds 3 >/dev/null
echo
printf "%-6s %-10s %5s %10s %10s %10s %12s %8s\n" round server conc "paid/s" "p50 (us)" "p99 (us)" "CPU us/call" failed
for round in $(seq "$ROUNDS"); do
  for conc in 1 8 32; do
    for side in gateway reference; do
      if [ "$side" = gateway ]; then url=http://$GW$ROUTE; pid=$GW_PID; else url=http://$REF$ROUTE; pid=$REF_PID; fi
      S=$(payer "$url" "$pid" "$conc" --seconds "$DURATION" --window 100000 | grep '^summary')
      printf "%-6s %-10s %5s %10s %10s %10s %12s %8s\n" "$round" "$side" "$conc" "$(field rps <<<"$S")" \
        "$(field p50_us <<<"$S")" "$(field p99_us <<<"$S")" "$(field cpu_us_per_call <<<"$S")" "$(field failed <<<"$S")"
    done
  done
done
echo "RSS after: gateway $(( $(rss_kib "$GW_PID") / 1024 )) MiB, reference $(( $(rss_kib "$REF_PID") / 1024 )) MiB"
