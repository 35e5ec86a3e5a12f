#!/usr/bin/env bash
# 402 challenge benchmark: the gateway vs the official x402 TypeScript reference server
# (@x402/hono, bench/reference/), side by side in one run, selling the same call at the same
# price, network, asset, payTo and fee payer (the reference reads /supported from the gateway's
# in-process facilitator). Prints challenges per second (saturated) and p50/p99 (one connection)
# for both, and the throughput ratio (target >= 10x).
#
# Usage: bash bench/challenge.sh [duration_seconds=10] [connections=32]
# Needs wrk, node 20+, and `npm ci --prefix bench/reference` (run here when node_modules is
# missing). Loopback only. On 2 cores, wrk and the server under test share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-32}
GW=127.0.0.1:9903
REF=127.0.0.1:9904
ROUTE=/v1/x402/solana/devnet/bench/rpc/getBalance

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
command -v node >/dev/null || { echo "node 20+ is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required: apt-get install jq" >&2; exit 1; }
[ -d bench/reference/node_modules/@x402/hono ] || npm ci --prefix bench/reference --no-audit --no-fund
cargo build --release --no-default-features --quiet --bin x402-gateway

# A throwaway fee-payer key (never funded: a challenge touches no chain) and facilitator secret.
FEE_PAYER_KEY=$(node -e '
  const { generateKeyPairSync } = require("node:crypto");
  const k = generateKeyPairSync("ed25519");
  const secret = k.privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  const pub = k.publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  console.log(JSON.stringify([...secret, ...pub]));')
FACILITATOR_SECRET=$(node -e 'console.log(require("node:crypto").randomBytes(24).toString("hex"))')
export FEE_PAYER_KEY FACILITATOR_SECRET

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

target/release/x402-gateway --config bench/challenge.toml serve & PIDS+=($!)
challenge() { # url → HTTP status of an unpaid POST
  curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d '{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}' "$1"
}
for _ in $(seq 100); do [ "$(challenge "http://$GW$ROUTE")" = 402 ] && break; sleep 0.1; done
[ "$(challenge "http://$GW$ROUTE")" = 402 ] || { echo "gateway did not answer 402" >&2; exit 1; }

PORT=${REF##*:} FACILITATOR_URL="http://$GW/api/internal/facilitator" PAY_TO=vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg \
  MINT=4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU node bench/reference/server.mjs & PIDS+=($!)
for _ in $(seq 100); do [ "$(challenge "http://$REF$ROUTE")" = 402 ] && break; sleep 0.1; done
[ "$(challenge "http://$REF$ROUTE")" = 402 ] || { echo "reference server did not answer 402" >&2; exit 1; }

# Same deal on both sides: the decoded PAYMENT-REQUIRED accepts[0] must be equal.
offer() {
  curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' \
    -d '{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}' "$1" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "payment-required" { print $2 }' | base64 -d |
    jq -c '.accepts[0] | {scheme, network, amount, asset, payTo, maxTimeoutSeconds, feePayer: .extra.feePayer}'
}
G_OFFER=$(offer "http://$GW$ROUTE")
R_OFFER=$(offer "http://$REF$ROUTE")
echo "gateway offer:   $G_OFFER"
echo "reference offer: $R_OFFER"
[ "$G_OFFER" = "$R_OFFER" ] || { echo "the two offers differ" >&2; exit 1; }
echo "challenge sizes (PAYMENT-REQUIRED header + body bytes):" \
  "gateway $(curl -s -D - -X POST -H 'content-type: application/json' -d '{"params":[]}' "http://$GW$ROUTE" | wc -c)," \
  "reference $(curl -s -D - -X POST -H 'content-type: application/json' -d '{"params":[]}' "http://$REF$ROUTE" | wc -c)"

run() { # url [connections] → "rps p50_us p99_us not402 socket_errors"
  wrk -t1 -c"${2:-$CONNS}" -d"${DURATION}s" --latency -s bench/challenge.lua "$1" | awk '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
    /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 }
    /^not402:/ { bad = $2 } /Socket errors/ { errors = "yes" }
    END { printf "%.0f %.0f %.0f %d %s\n", rps, p50, p99, bad, (errors == "" ? "none" : errors) }'
}

echo "machine: $(nproc) cores, $(uname -m), node $(node --version); wrk -t1 -c$CONNS -d${DURATION}s;" \
  "gateway 1 worker thread, reference one Node process; the server and wrk share the cores"
# Warm both (JIT, pools), then measure one after the other so they never compete.
wrk -t1 -c"$CONNS" -d3s -s bench/challenge.lua "http://$GW$ROUTE" >/dev/null
wrk -t1 -c"$CONNS" -d3s -s bench/challenge.lua "http://$REF$ROUTE" >/dev/null
read -r G_RPS G_P50 G_P99 G_BAD G_ERR < <(run "http://$GW$ROUTE")
read -r R_RPS R_P50 R_P99 R_BAD R_ERR < <(run "http://$REF$ROUTE")
read -r g1_rps g1_p50 g1_p99 _ _ < <(run "http://$GW$ROUTE" 1)
read -r r1_rps r1_p50 r1_p99 _ _ < <(run "http://$REF$ROUTE" 1)
echo
printf "%-26s %12s %10s %10s %14s\n" "" "402s/s" "p50 (us)" "p99 (us)" "non-402/errors"
printf "%-26s %12s %10s %10s %14s\n" "gateway, $CONNS conns" "$G_RPS" "$G_P50" "$G_P99" "$G_BAD/$G_ERR"
printf "%-26s %12s %10s %10s %14s\n" "reference, $CONNS conns" "$R_RPS" "$R_P50" "$R_P99" "$R_BAD/$R_ERR"
printf "%-26s %12s %10s %10s\n" "gateway, 1 conn" "$g1_rps" "$g1_p50" "$g1_p99"
printf "%-26s %12s %10s %10s\n" "reference, 1 conn" "$r1_rps" "$r1_p50" "$r1_p99"
awk -v g="$G_RPS" -v r="$R_RPS" 'BEGIN { printf "challenge throughput ratio (gateway / reference): %.1fx (target >= 10x)\n", g/r }'
