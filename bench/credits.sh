#!/usr/bin/env bash
# Credit-paid calls vs free calls on the same route, end to end over HTTP (wrk), with the release
# gateway on a demo-like setup: a local Solana cluster run as its own process (`x402-gateway
# localnet`, LiteSVM), the gateway selling that cluster's getBalance with payments on (the
# in-process facilitator, the memory store, the embedded SQLite ledger) and `[credits]` on.
#
# One wallet buys one pack once (`x402-pay topup`, a real settled payment) and signs in once
# (`x402-pay balance`, a real SIWX proof; the session token is kept in a file). wrk then sends
# `Authorization: Bearer <token>` on every call at concurrency 1 and 32: each call is served
# from the balance (reserved in the ledger before the upstream call, spent after it), no chain,
# no facilitator. The free side is the same route config with payments off, its own gateway
# process. Answers other than 200 are counted and shown (a credit-paid call refused with 503
# `payment_unavailable` when the ledger timed out is not charged), and the ledger's balance
# (admin API) is shown going down by the credit price × the calls served, give or take the
# calls in flight when wrk stopped.
#
# Last, a lower bound on exact-paid calls/s on this machine: `x402-pay pay` (one process per
# call, which reads the mint and a blockhash, signs, pays and waits for the settlement) in a
# loop, 1 and 8 loops at once. It measures the client as much as the gateway; bench/paid.sh
# (a dedicated load generator) gives the gateway's exact-paid number.
#
# Usage: bash bench/credits.sh [duration_seconds=10] [exact_calls_per_loop=20]
# Needs wrk, curl and jq. Loopback only. The gateways are confined to CPU 1 (one worker thread,
# as in bench/paid.sh), the cluster, wrk and the clients to CPU 0 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
EXACT_CALLS=${2:-20}
RPC_PORT=9912
GW=127.0.0.1:9913
FREE=127.0.0.1:9914
RPC=http://127.0.0.1:$RPC_PORT
ROUTE=/v1/x402/solana/devnet/rpc
DIR=target/bench-credits
ADMIN_TOKEN=bench-credits-admin
export CREDITS_SECRET=bench-credits-secret

for tool in wrk curl jq; do
  command -v "$tool" >/dev/null || { echo "$tool is required: apt-get install $tool" >&2; exit 1; }
done
# The default features: `x402-gateway localnet` needs the embedded cluster.
# GATEWAY_BIN: the gateway binary to measure (an A/B comparison of two builds); the local
# cluster and the clients always come from this checkout's release build.
cargo build --release --quiet --bin x402-gateway --bin x402-pay

rm -rf "$DIR"; mkdir -p "$DIR/keys"
cat >"$DIR/localnet.toml" <<EOF
[localnet]
listen = "127.0.0.1:$RPC_PORT"
pay_to = "vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"
keypair_dir = "$DIR/keys"
fee_payers = ["$DIR/keys/fee-payer.json"]
fee_payer_lamports = 1000000000000
[[localnet.wallets]]
keypair = "$DIR/keys/wallet.json"
usdc = 100000000000
EOF

# The gateway's config; `PAYMENT` and `CREDITS` switch the paid and the free side.
gateway_toml() { # listen payment_enabled credits_enabled ledger_dir
  cat <<EOF
[server]
listen = "$1"
public_base_url = "http://$1"
worker_threads = 1

[log]
filter = "warn"

# One wallet far past any sane per-payer limit: this measures the call, not the limiter.
[rate_limits]
enabled = false

[ledger]
data_dir = "$4"

[payment]
enabled = $2
pay_to = "vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"
[[payment.accepts]]
network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
asset = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"

[facilitator]
fee_payer_env = "FEE_PAYER_KEY"
[[facilitator.networks]]
network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
rpc_urls = ["$RPC"]
allowed_mints = ["4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"]

# 1 unit a call at 1 atomic unit per unit: credit price 2 (x 1.2 markup, rounded up); the exact
# price is the floor or the computed settlement cost, whichever is higher.
[[providers]]
name = "bench"
key_placement = "none"
atomic_per_million_units = 1000000
[providers.clusters]
devnet = "$RPC/"
[providers.rpc]
getBalance = 1

[credits]
enabled = $3
[[credits.packs]]
name = "bench"
price = 1000000
credits = 1000000000
EOF
}
gateway_toml "$GW" true true "$DIR/ledger" >"$DIR/credits.toml"
gateway_toml "$FREE" false false "$DIR/ledger-free" >"$DIR/free.toml"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

SERVER_CPU=1; LOAD_CPU=0
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; fi
taskset -c "$LOAD_CPU" target/release/x402-gateway --config "$DIR/localnet.toml" localnet >"$DIR/localnet.log" 2>&1 &
PIDS+=($!)
rpc_up() { curl -fs -X POST -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"getSlot"}' "$RPC" >/dev/null 2>&1; }
for _ in $(seq 150); do rpc_up && break; sleep 0.1; done
rpc_up || { echo "the local cluster did not start:" >&2; cat "$DIR/localnet.log" >&2; exit 1; }

export FEE_PAYER_KEY; FEE_PAYER_KEY=$(cat "$DIR/keys/fee-payer.json")
declare -A PID
for side in credits free; do
  ADMIN_TOKEN=$ADMIN_TOKEN taskset -c "$SERVER_CPU" \
    "${GATEWAY_BIN:-target/release/x402-gateway}" --config "$DIR/$side.toml" serve >"$DIR/$side.log" 2>&1 &
  PIDS+=($!); PID[$side]=$!
done
# CPU time of a gateway process so far (utime + stime, every thread), in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
for addr in "$GW" "$FREE"; do
  for _ in $(seq 150); do curl -fs "http://$addr/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs "http://$addr/healthz" >/dev/null || { echo "the gateway on $addr did not start" >&2; exit 1; }
done

WALLET_ARGS=(--keypair "$DIR/keys/wallet.json" --rpc "$RPC")
PAY=(taskset -c "$LOAD_CPU" target/release/x402-pay)
"${PAY[@]}" topup "http://$GW" --pack bench "${WALLET_ARGS[@]}" --token-file "$DIR/token.json" | sed 's/^/topup: /'
"${PAY[@]}" balance "http://$GW" "${WALLET_ARGS[@]}" --token-file "$DIR/token.json" | sed 's/^/balance: /'
TOKEN=$(jq -r .token "$DIR/token.json")
WALLET=$("${PAY[@]}" balance "http://$GW" "${WALLET_ARGS[@]}" --token-file "$DIR/token.json" | sed -n 's/^wallet: //p')
ledger_balance() { curl -fs -H "Authorization: Bearer $ADMIN_TOKEN" "http://$GW/admin/credits/$WALLET" | jq .balance; }

# One credit-paid call by hand: 200 and the header.
BODY='{"jsonrpc":"2.0","id":1,"method":"getBalance","params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}'
EXACT=$("${PAY[@]}" quote "http://$GW$ROUTE" --body "$BODY" | sed -n 's/.*amount[: ]*\([0-9][0-9]*\).*/\1/p' | head -1)
echo "exact price of the same call: ${EXACT:-?} atomic units"
B0=$(ledger_balance)
HEAD=$(curl -fs -D - -o /dev/null -X POST -H 'content-type: application/json' -H "Authorization: Bearer $TOKEN" -d "$BODY" "http://$GW$ROUTE" | tr -d '\r')
LEFT=$(awk -F': ' 'tolower($1) == "x-credits-remaining" { print $2 }' <<<"$HEAD")
[ -n "$LEFT" ] || { echo "no X-Credits-Remaining on a credit-paid call:" >&2; echo "$HEAD" >&2; exit 1; }
PRICE=$((B0 - LEFT))
echo "credit price of one getBalance call: $PRICE credits (balance $B0 -> $LEFT, ledger $(ledger_balance))"

run() { # pid url connections [auth] → "rps p50_us p99_us requests non_200 cpu_us_per_call"
  local pid=$1 url=$2 conns=$3 t0 out; shift 3
  t0=$(ticks "$pid")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s bench/post.lua "$@" "$url" | awk '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
    /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 } / requests in / { n = $1 }
    /Non-2xx/ { bad = $NF }
    END { printf "%.0f %.0f %.0f %d %d\n", rps, p50, p99, n, bad }')
  # The gateway's CPU over the run (its behind writes included) per call counted by wrk.
  awk -v out="$out" -v cpu="$(( ($(ticks "$pid") - t0) * TICK_US ))" \
    'BEGIN { split(out, f, " "); printf "%s %.1f\n", out, f[4] ? cpu / f[4] : 0 }'
}
AUTH=(-H "Authorization: Bearer $TOKEN")
# Warm both sides.
taskset -c "$LOAD_CPU" wrk -t1 -c8 -d2s -s bench/post.lua "http://$FREE$ROUTE" >/dev/null
taskset -c "$LOAD_CPU" wrk -t1 -c8 -d2s -s bench/post.lua "${AUTH[@]}" "http://$GW$ROUTE" >/dev/null

echo "machine: $(nproc) cores, $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "gateways on CPU $SERVER_CPU (1 worker thread), cluster, wrk and x402-pay on CPU $LOAD_CPU; wrk -t1 -d${DURATION}s"
printf "%-24s %10s %10s %10s %10s %8s %12s\n" "" "calls/s" "p50 (us)" "p99 (us)" "calls" "non-200" "CPU/call us"
declare -A RPS P50
for conns in 1 32; do
  read -r F_RPS F_P50 F_P99 F_N F_BAD F_CPU < <(run "${PID[free]}" "http://$FREE$ROUTE" "$conns")
  B1=$(ledger_balance)
  read -r C_RPS C_P50 C_P99 C_N C_BAD C_CPU < <(run "${PID[credits]}" "http://$GW$ROUTE" "$conns" "${AUTH[@]}")
  sleep 1
  B2=$(ledger_balance)
  printf "%-24s %10s %10s %10s %10s %8s %12s\n" "free, $conns conn" "$F_RPS" "$F_P50" "$F_P99" "$F_N" "$F_BAD" "$F_CPU"
  printf "%-24s %10s %10s %10s %10s %8s %12s\n" "credit-paid, $conns conn" "$C_RPS" "$C_P50" "$C_P99" "$C_N" "$C_BAD" "$C_CPU"
  echo "  ledger: $((B1 - B2)) credits spent for $C_N calls counted by wrk, $C_BAD of them not 200" \
    "(x $PRICE = $(((C_N - C_BAD) * PRICE)); a difference is calls in flight when wrk stopped)"
  RPS[$conns]=$C_RPS; P50[$conns]=$((C_P50 - F_P50))
done
echo "credit-paid over free, 1 conn: p50 +${P50[1]} us"
grep -h '"level":"WARN"' "$DIR/credits.log" | jq -r .message 2>/dev/null | sort | uniq -c | sed 's/^/credits gateway warnings: /' || true

# Exact-paid lower bound: x402-pay pay, one process per call, L loops at once.
exact() { # loops → calls/s
  local loops=$1 start end pids=() p
  start=$(date +%s.%N)
  for _ in $(seq "$loops"); do
    (for _ in $(seq "$EXACT_CALLS"); do
       "${PAY[@]}" pay "http://$GW$ROUTE" --body "$BODY" "${WALLET_ARGS[@]}" >/dev/null ||
         { echo "x402-pay pay failed" >&2; exit 1; }
     done) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || exit 1; done
  end=$(date +%s.%N)
  awk -v n=$((loops * EXACT_CALLS)) -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", n / (e - s) }'
}
for loops in 1 8; do
  E=$(exact "$loops")
  echo "exact-paid, x402-pay pay in $loops loop(s) x $EXACT_CALLS calls: $E calls/s (a lower bound: each call is a new client process that reads the mint and a blockhash and waits for the settlement)"
  awk -v c="${RPS[32]}" -v e="$E" 'BEGIN { printf "  credit-paid (32 conns) / this: %.0fx\n", c / e }'
done
