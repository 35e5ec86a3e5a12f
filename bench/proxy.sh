#!/usr/bin/env bash
# Proxy overhead benchmark: the gateway in front of a loopback upstream, nginx as a plain reverse
# proxy in front of the same upstream (the anchor: bench/nginx-proxy.conf, one process, keep-alive
# both ways), and the upstream direct, side by side in one run, for two upstreams: one that
# answers instantly (pure CPU cost of the extra hop) and one with a 1 ms service time (a fast RPC
# node). Prints req/s, p50/p99, each proxy's own CPU per proxied call (utime + stime from /proc
# over the run / requests), the throughput ratio and added latency against direct, and the
# gateway's CPU per call as a ratio to nginx's (target <= 1.5x).
#
# Usage: bash bench/proxy.sh [duration_seconds=10] [connections=32] [rounds=3]
# (GATEWAY_BIN=<binary> runs another build of the gateway, for A/B runs.)
# Needs wrk and nginx (apt-get install wrk nginx; the nginx service need not run). Loopback only.
# The two proxies are confined to CPU 1, the upstream and wrk to CPU 0 (taskset), like
# bench/challenge.sh, so each proxy gets the same core and its CPU time is its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-32}
ROUNDS=${3:-3}
UP=127.0.0.1:9901
GW=127.0.0.1:9902
NGINX=127.0.0.1:9908
GW_PATH=/v1/x402/solana/devnet/rpc

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX_BIN" ] || { echo "nginx is required: apt-get install nginx" >&2; exit 1; }
cargo build --release --no-default-features --quiet --example bench_upstream --bin x402-gateway

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${NGINX_DIR:-}" ] && rm -rf "$NGINX_DIR"
}
trap cleanup EXIT

SERVER_CPU=1; LOAD_CPU=0
if [ "$(nproc)" -lt 2 ]; then SERVER_CPU=0; fi
taskset -c "$SERVER_CPU" "${GATEWAY_BIN:-target/release/x402-gateway}" --config bench/proxy.toml serve & GW_PID=$!; PIDS+=($GW_PID)
NGINX_DIR=$(mktemp -d /tmp/proxy-nginx.XXXXXX)
taskset -c "$SERVER_CPU" "$NGINX_BIN" -p "$NGINX_DIR" -e stderr -c "$PWD/bench/nginx-proxy.conf" & NGINX_PID=$!; PIDS+=($NGINX_PID)

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

run() { # url [connections] [pid] → "rps p50_us p99_us requests cpu_us" (cpu 0 without a pid)
  local before=0 after=0 out
  [ -n "${3:-}" ] && before=$(cpu_ticks "$3")
  out=$(mktemp /tmp/proxy-wrk.XXXXXX)
  taskset -c "$LOAD_CPU" wrk -t1 -c"${2:-$CONNS}" -d"${DURATION}s" --latency -s bench/post.lua "$1" > "$out"
  [ -n "${3:-}" ] && after=$(cpu_ticks "$3")
  awk -v cpu="$(( (after - before) * TICK_US ))" '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
    /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 }
    / requests in / { total = $1 }
    END { printf "%.0f %.0f %.0f %d %d\n", rps, p50, p99, total, cpu }' "$out"
  rm -f "$out"
}
status() { curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"getBalance","params":[]}' "$1"; }

echo "machine: $(nproc) cores, $(uname -m), $("$NGINX_BIN" -v 2>&1 | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "wrk -t1 -c$CONNS -d${DURATION}s x $ROUNDS rounds; gateway (1 worker) and nginx (1 process) on CPU $SERVER_CPU, upstream and wrk on CPU $LOAD_CPU"
for DELAY in 0 1000; do
  taskset -c "$LOAD_CPU" target/release/examples/bench_upstream "$UP" "$DELAY" & UP_PID=$!
  for _ in $(seq 50); do
    [ "$(status "http://$GW$GW_PATH")" = 200 ] && [ "$(status "http://$NGINX/")" = 200 ] && break
    sleep 0.1
  done
  for u in "http://$GW$GW_PATH" "http://$NGINX/"; do
    [ "$(status "$u")" = 200 ] || { echo "$u does not answer 200" >&2; exit 1; }
  done
  # Warm all three.
  for u in "http://$UP/" "http://$GW$GW_PATH" "http://$NGINX/"; do
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -s bench/post.lua "$u" >/dev/null
  done
  echo
  echo "upstream service time: ${DELAY} us"
  printf "%-6s %-22s %10s %10s %10s %12s\n" round "" "req/s" "p50 (us)" "p99 (us)" "CPU us/call"
  D_SUM=0; G_SUM=0; N_SUM=0; GC=0; GN=0; NC=0; NN=0
  for round in $(seq "$ROUNDS"); do
    read -r D_RPS D_P50 D_P99 _ _ < <(run "http://$UP/")
    read -r G_RPS G_P50 G_P99 g_n g_cpu < <(run "http://$GW$GW_PATH" "$CONNS" "$GW_PID")
    read -r N_RPS N_P50 N_P99 n_n n_cpu < <(run "http://$NGINX/" "$CONNS" "$NGINX_PID")
    printf "%-6s %-22s %10s %10s %10s %12s\n" "$round" "direct, $CONNS conns" "$D_RPS" "$D_P50" "$D_P99" "-"
    printf "%-6s %-22s %10s %10s %10s %12.1f\n" "$round" "gateway, $CONNS conns" "$G_RPS" "$G_P50" "$G_P99" \
      "$(awk -v c="$g_cpu" -v n="$g_n" 'BEGIN { print c/n }')"
    printf "%-6s %-22s %10s %10s %10s %12.1f\n" "$round" "nginx, $CONNS conns" "$N_RPS" "$N_P50" "$N_P99" \
      "$(awk -v c="$n_cpu" -v n="$n_n" 'BEGIN { print c/n }')"
    D_SUM=$((D_SUM + D_RPS)); G_SUM=$((G_SUM + G_RPS)); N_SUM=$((N_SUM + N_RPS))
    GC=$((GC + g_cpu)); GN=$((GN + g_n)); NC=$((NC + n_cpu)); NN=$((NN + n_n))
  done
  # Added latency is measured unsaturated (one connection): at saturation wrk measures queueing.
  read -r d1_rps d1_p50 d1_p99 _ _ < <(run "http://$UP/" 1)
  read -r g1_rps g1_p50 g1_p99 _ _ < <(run "http://$GW$GW_PATH" 1)
  read -r n1_rps n1_p50 n1_p99 _ _ < <(run "http://$NGINX/" 1)
  kill "$UP_PID"; wait "$UP_PID" 2>/dev/null || true
  printf "%-6s %-22s %10s %10s %10s\n" - "direct, 1 conn" "$d1_rps" "$d1_p50" "$d1_p99"
  printf "%-6s %-22s %10s %10s %10s\n" - "gateway, 1 conn" "$g1_rps" "$g1_p50" "$g1_p99"
  printf "%-6s %-22s %10s %10s %10s\n" - "nginx, 1 conn" "$n1_rps" "$n1_p50" "$n1_p99"
  awk -v g="$G_SUM" -v d="$D_SUM" -v n="$N_SUM" -v gp="$g1_p50" -v dp="$d1_p50" -v np="$n1_p50" -v g9="$g1_p99" -v d9="$d1_p99" \
    -v gc="$GC" -v gn="$GN" -v nc="$NC" -v nn="$NN" -v conns="$CONNS" 'BEGIN {
    printf "throughput vs direct (%s conns): gateway %.2fx, nginx %.2fx; added latency (1 conn) p50: gateway %d us, nginx %d us; gateway p99 +%d us\n",
      conns, g/d, n/d, gp-dp, np-dp, g9-d9
    printf "CPU per proxied call: gateway %.1f us, nginx %.1f us = gateway %.2fx nginx (target <= 1.5x)\n",
      gc/gn, nc/nn, (gc/gn)/(nc/nn) }'
done
