#!/usr/bin/env bash
# Proxy overhead benchmark: the gateway in front of a loopback upstream vs the upstream direct,
# side by side in one run, for two upstreams: one that answers instantly (pure CPU cost of the
# extra hop) and one with a 1 ms service time (a fast RPC node). Prints the throughput ratio and
# the added p50/p99 latency for each.
#
# Usage: bash bench/proxy.sh [duration_seconds=10] [connections=32]
# Needs wrk (apt-get install wrk). Loopback only. Run it on a quiet machine: on 2 cores, wrk,
# the gateway and the upstream already compete with each other.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-32}
UP=127.0.0.1:9901
GW=127.0.0.1:9902

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --no-default-features --quiet --example bench_upstream --bin x402-gateway

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

target/release/x402-gateway --config bench/proxy.toml serve & PIDS+=($!)

run() { # url [connections] → "rps p50_us p99_us"
  wrk -t1 -c"${2:-$CONNS}" -d"${DURATION}s" --latency -s bench/post.lua "$1" | awk '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
    /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 }
    END { printf "%.0f %.0f %.0f\n", rps, p50, p99 }'
}

echo "machine: $(nproc) cores, $(uname -m); wrk -t1 -c$CONNS -d${DURATION}s; gateway, upstream and wrk share the cores"
for DELAY in 0 1000; do
  target/release/examples/bench_upstream "$UP" "$DELAY" & UP_PID=$!
  for _ in $(seq 50); do
    curl -fs "http://$GW/healthz" >/dev/null 2>&1 && curl -fs -o /dev/null -X POST "http://$UP/" -d '{}' 2>/dev/null && break
    sleep 0.1
  done
  # Warm both, then measure direct and proxied back to back.
  wrk -t1 -c"$CONNS" -d2s -s bench/post.lua "http://$UP/" >/dev/null
  wrk -t1 -c"$CONNS" -d2s -s bench/post.lua "http://$GW/v1/x402/solana/devnet/rpc" >/dev/null
  read -r D_RPS D_P50 D_P99 < <(run "http://$UP/")
  read -r G_RPS G_P50 G_P99 < <(run "http://$GW/v1/x402/solana/devnet/rpc")
  # Added latency is measured unsaturated (one connection): at saturation wrk measures queueing.
  read -r d1_rps d1_p50 d1_p99 < <(run "http://$UP/" 1)
  read -r g1_rps g1_p50 g1_p99 < <(run "http://$GW/v1/x402/solana/devnet/rpc" 1)
  kill "$UP_PID"; wait "$UP_PID" 2>/dev/null || true
  echo
  echo "upstream service time: ${DELAY} us"
  printf "%-22s %10s %10s %10s\n" "" "req/s" "p50 (us)" "p99 (us)"
  printf "%-22s %10s %10s %10s\n" "direct, $CONNS conns" "$D_RPS" "$D_P50" "$D_P99"
  printf "%-22s %10s %10s %10s\n" "gateway, $CONNS conns" "$G_RPS" "$G_P50" "$G_P99"
  printf "%-22s %10s %10s %10s\n" "direct, 1 conn" "$d1_rps" "$d1_p50" "$d1_p99"
  printf "%-22s %10s %10s %10s\n" "gateway, 1 conn" "$g1_rps" "$g1_p50" "$g1_p99"
  awk -v g="$G_RPS" -v d="$D_RPS" -v gp="$g1_p50" -v dp="$d1_p50" -v g9="$g1_p99" -v d9="$d1_p99" \
    'BEGIN { printf "throughput ratio (%s conns) %.2fx; added latency (1 conn) p50 %d us, p99 %d us\n", "'"$CONNS"'", g/d, gp-dp, g9-d9 }'
done
