#!/usr/bin/env bash
# 402 challenge benchmark: the gateway vs the official x402 TypeScript reference servers
# (bench/reference/: @x402/hono on @hono/node-server, and @x402/express on Express 5), side by side
# in one run, selling the same call at the same price, network, asset, payTo and fee payer (the
# references read /supported from the gateway's in-process facilitator). Prints challenges per
# second (saturated) and p50/p99 (one connection) for each, and the gateway's throughput and CPU
# ratios against each reference (target >= 10x). The physical anchor runs beside them: a bare hyper
# server (examples/bench_static402.rs, one tokio worker) that reads the request body and answers
# the gateway's own 402 bytes (same status, headers and body, captured from the gateway at start),
# with no routing, middleware or pricing; the gateway's CPU per challenge is reported as a ratio
# to it (target <= 1.3x).
#
# GATEWAY_BIN: the gateway binary to measure (A/B of two builds).
# Usage: bash bench/challenge.sh [duration_seconds=10] [connections=32] [rounds=3]
#
# The machine is shared, so besides wall-clock throughput the script reports each server's own
# CPU time per challenge (utime + stime from /proc over the run / responses), which outside load
# moves much less than throughput, and it rotates the servers over several rounds so that a burst
# of outside load does not land on one side only. A last line measures the gateway's GET /healthz
# through the same middleware stack: the ceiling of any route on this machine.
# Needs wrk, node 20+, jq, and `npm ci --prefix bench/reference` (run here when node_modules is
# missing). Loopback only. Each server is confined to CPU 1 and wrk to CPU 0 (taskset), so every
# server gets the same single core and the load generator never competes with it for that core.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-32}
ROUNDS=${3:-3}
GW=127.0.0.1:9903
HONO=127.0.0.1:9904
EXPRESS=127.0.0.1:9905
BARE=127.0.0.1:9909
ROUTE=/v1/x402/solana/devnet/bench/rpc/getBalance

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
command -v node >/dev/null || { echo "node 20+ is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required: apt-get install jq" >&2; exit 1; }
[ -d bench/reference/node_modules/@x402/express ] || npm ci --prefix bench/reference --no-audit --no-fund
cargo build --release --no-default-features --quiet --bin x402-gateway --example bench_static402

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

SERVER_CPU=1; WRK_CPU=0
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; fi # one core: no pinning is possible, both share it
taskset -c "$SERVER_CPU" "${GATEWAY_BIN:-target/release/x402-gateway}" --config bench/challenge.toml serve & GW_PID=$!; PIDS+=($GW_PID)
challenge() { # url → HTTP status of an unpaid POST
  curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d '{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}' "$1"
}
for _ in $(seq 100); do [ "$(challenge "http://$GW$ROUTE")" = 402 ] && break; sleep 0.1; done
[ "$(challenge "http://$GW$ROUTE")" = 402 ] || { echo "gateway did not answer 402" >&2; exit 1; }

# Same deal on every side: the decoded PAYMENT-REQUIRED accepts[0] must be equal.
offer() {
  curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' \
    -d '{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}' "$1" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "payment-required" { print $2 }' | base64 -d |
    jq -c '.accepts[0] | {scheme, network, amount, asset, payTo, maxTimeoutSeconds, feePayer: .extra.feePayer}'
}
# The references sell at the gateway's price (its floor includes the settlement cost).
PRICE=$(offer "http://$GW$ROUTE" | jq -r .amount)
reference() { # framework address → starts the official server, records its pid in REF_PID
  PORT=${2##*:} FRAMEWORK=$1 PRICE=$PRICE FACILITATOR_URL="http://$GW/api/internal/facilitator" \
    PAY_TO=vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg MINT=4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU \
    taskset -c "$SERVER_CPU" node bench/reference/server.mjs & REF_PID=$!; PIDS+=($REF_PID)
  for _ in $(seq 100); do [ "$(challenge "http://$2$ROUTE")" = 402 ] && break; sleep 0.1; done
  [ "$(challenge "http://$2$ROUTE")" = 402 ] || { echo "reference server ($1) did not answer 402" >&2; exit 1; }
}
# The anchor: the gateway's own 402, replayed byte for byte by a bare hyper server.
BARE_DIR=$(mktemp -d /tmp/challenge-bare.XXXXXX)
curl -s -D "$BARE_DIR/headers" -o "$BARE_DIR/body" -X POST -H 'content-type: application/json' \
  -d '{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}' "http://$GW$ROUTE"
taskset -c "$SERVER_CPU" target/release/examples/bench_static402 "$BARE" "$BARE_DIR/headers" "$BARE_DIR/body" & BARE_PID=$!; PIDS+=($BARE_PID)
for _ in $(seq 100); do [ "$(challenge "http://$BARE$ROUTE")" = 402 ] && break; sleep 0.1; done
[ "$(challenge "http://$BARE$ROUTE")" = 402 ] || { echo "the bare 402 server did not answer 402" >&2; exit 1; }
reference hono "$HONO"; HONO_PID=$REF_PID
reference express "$EXPRESS"; EXPRESS_PID=$REF_PID

G_OFFER=$(offer "http://$GW$ROUTE")
echo "gateway offer: $G_OFFER"
for ref in "$HONO" "$EXPRESS" "$BARE"; do
  [ "$(offer "http://$ref$ROUTE")" = "$G_OFFER" ] || { echo "the offer at $ref differs: $(offer "http://$ref$ROUTE")" >&2; exit 1; }
done
echo "both references (and the bare anchor) make the same offer"
size() { curl -s -D - -X POST -H 'content-type: application/json' -d '{"params":[]}' "http://$1$ROUTE" | wc -c; }
echo "challenge sizes on the wire (status line, headers, body): gateway $(size "$GW") bytes," \
  "hono $(size "$HONO"), express $(size "$EXPRESS"), bare $(size "$BARE")"

cpu_ticks() { # pid → utime + stime, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

run() { # url pid [connections] [plain] → "rps p50_us p99_us not402 socket_errors requests cpu_us"
  local before after script=(-s bench/challenge.lua)
  [ "${4:-}" = plain ] && script=() # a plain GET, no status check
  before=$(cpu_ticks "$2")
  # Its own file: the caller's `read` returns on the printed line while this subshell may still
  # be removing the file, so a shared name ($$) let the next run's file be deleted under it.
  local out
  out=$(mktemp /tmp/challenge-wrk.XXXXXX)
  taskset -c "$WRK_CPU" wrk -t1 -c"${3:-$CONNS}" -d"${DURATION}s" --latency "${script[@]}" "$1" > "$out"
  after=$(cpu_ticks "$2")
  awk -v cpu="$(( (after - before) * TICK_US ))" '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
    /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 }
    / requests in / { total = $1 } /^not402:/ { bad = $2 } /Socket errors/ { errors = "yes" }
    END { printf "%.0f %.0f %.0f %d %s %d %d\n", rps, p50, p99, bad, (errors == "" ? "none" : errors), total, cpu }' "$out"
  rm -f "$out"
}

echo "machine: $(nproc) cores, $(uname -m), node $(node --version), load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "wrk -t1 -c$CONNS -d${DURATION}s x $ROUNDS rounds on CPU $WRK_CPU; servers on CPU $SERVER_CPU (gateway 1 worker thread, references one Node process each)"
NAMES=(gateway hono express bare)
ADDRS=("$GW" "$HONO" "$EXPRESS" "$BARE")
SPIDS=("$GW_PID" "$HONO_PID" "$EXPRESS_PID" "$BARE_PID")
# Warm every server (JIT, pools).
for i in 0 1 2 3; do
  taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d3s -s bench/challenge.lua "http://${ADDRS[$i]}$ROUTE" >/dev/null
done
echo
printf "%-6s %-10s %10s %10s %10s %14s %12s\n" "round" "server" "402s/s" "p50 (us)" "p99 (us)" "non-402/errors" "CPU us/402"
SUM=(0 0 0 0); CPU=(0 0 0 0); N=(0 0 0 0)
for round in $(seq "$ROUNDS"); do
  for i in 0 1 2 3; do
    read -r rps p50 p99 bad err n cpu < <(run "http://${ADDRS[$i]}$ROUTE" "${SPIDS[$i]}")
    printf "%-6s %-10s %10s %10s %10s %14s %12.1f\n" "$round" "${NAMES[$i]}" "$rps" "$p50" "$p99" "$bad/$err" \
      "$(awk -v c="$cpu" -v n="$n" 'BEGIN { print c/n }')"
    SUM[i]=$((SUM[i] + rps)); CPU[i]=$((CPU[i] + cpu)); N[i]=$((N[i] + n))
  done
done
# Latency unsaturated (one connection): at saturation wrk measures queueing.
for i in 0 1 2 3; do
  read -r rps1 p50 p99 _ _ _ _ < <(run "http://${ADDRS[$i]}$ROUTE" "${SPIDS[$i]}" 1)
  printf "%-6s %-10s %10s %10s %10s   (1 connection)\n" "-" "${NAMES[$i]}" "$rps1" "$p50" "$p99"
done
# The ceiling: the same stack answering GET /healthz (no paygate, a 2-byte body).
read -r h_rps h_p50 h_p99 _ h_err h_n h_cpu < <(run "http://$GW/healthz" "$GW_PID" "$CONNS" plain)
printf "%-6s %-10s %10s %10s %10s %14s %12.1f   (GET /healthz)\n" "-" gateway "$h_rps" "$h_p50" "$h_p99" "-/$h_err" \
  "$(awk -v c="$h_cpu" -v n="$h_n" 'BEGIN { print c/n }')"
for i in 1 2; do
  awk -v name="${NAMES[$i]}" -v g="${SUM[0]}" -v r="${SUM[$i]}" -v gc="${CPU[0]}" -v gn="${N[0]}" -v rc="${CPU[$i]}" -v rn="${N[$i]}" 'BEGIN {
    printf "vs %-8s throughput (mean 402s/s) %.1fx, CPU per challenge %.1f us vs %.1f us = %.1fx (target >= 10x)\n",
      name, g/r, gc/gn, rc/rn, (rc/rn)/(gc/gn) }'
done
awk -v g="${SUM[0]}" -v r="${SUM[3]}" -v gc="${CPU[0]}" -v gn="${N[0]}" -v rc="${CPU[3]}" -v rn="${N[3]}" 'BEGIN {
  printf "vs bare hyper (same 402 bytes): throughput %.2fx, CPU per challenge %.1f us vs %.1f us = gateway %.2fx the anchor (target <= 1.3x)\n",
    g/r, gc/gn, rc/rn, (gc/gn)/(rc/rn) }'
rm -rf "$BARE_DIR"
