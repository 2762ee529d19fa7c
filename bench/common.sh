#!/usr/bin/env bash
# Shared helpers for the benchmarks: start/stop a private estibad and (when installed) a private
# dockerd, each on its own socket and data-root under $BENCH_DIR, and stop them by PID on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$root/target/release
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/estiba-bench.XXXXXX)}
ESTIBA_SOCK=$BENCH_DIR/estiba.sock
DOCKERD_SOCK=$BENCH_DIR/dockerd.sock
pids=()

cleanup() {
  # Containers outlive estibad by design: remove them while it still runs.
  for sock in "$ESTIBA_SOCK" "$DOCKERD_SOCK"; do
    [ -S "$sock" ] || continue
    ids=$(docker -H "unix://$sock" ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && docker -H "unix://$sock" rm -f $ids >/dev/null 2>&1 || true
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  # dockerd leaves overlay mounts under its data-root until its containerd exits.
  grep -o "$BENCH_DIR[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

build() { # SKIP_BUILD=1 reuses the release binaries already in target/release
  [ -n "${SKIP_BUILD:-}" ] && return 0
  (cd "$root" && cargo build --release -q -p estiba-daemon -p estiba-cli -p estiba-testimg \
    -p estiba-shim -p estiba-runtime)
}

wait_sock() { # wait_sock SOCK: up to 30 s for /_ping on SOCK
  for _ in $(seq 1 300); do
    curl -sf --unix-socket "$1" http://x/_ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon on $1 did not come up" >&2
  return 1
}

# This run's own default bridge, subnet and nftables table (removed when estibad stops), so
# benchmarks running side by side never share them.
NET_ID=$(printf '%04x' $((RANDOM % 65536)))
NET_FLAGS=(--bridge "esb$NET_ID" --bip "10.254.$((RANDOM % 256)).1/24"
  --default-address-pool "base=10.$((RANDOM % 120 + 1)).0.0/16,size=24"
  --nft-table "estiba_bench_$NET_ID" --net-cleanup-on-exit)

start_estibad() {
  mkdir -p "$BENCH_DIR/estiba-root" "$BENCH_DIR/estiba-exec"
  "$BIN/estibad" -H "unix://$ESTIBA_SOCK" --data-root "$BENCH_DIR/estiba-root" \
    --exec-root "$BENCH_DIR/estiba-exec" --pidfile "$BENCH_DIR/estiba-exec/estibad.pid" \
    --config-file /dev/null "${NET_FLAGS[@]}" ${ESTIBAD_ARGS:-} >"$BENCH_DIR/estibad.log" 2>&1 &
  ESTIBAD_PID=$!
  pids+=("$ESTIBAD_PID")
  wait_sock "$ESTIBA_SOCK"
}

have_dockerd() { command -v dockerd >/dev/null 2>&1; }

start_dockerd() {
  mkdir -p "$BENCH_DIR/docker-root" "$BENCH_DIR/docker-exec"
  dockerd -H "unix://$DOCKERD_SOCK" --data-root "$BENCH_DIR/docker-root" \
    --exec-root "$BENCH_DIR/docker-exec" --pidfile "$BENCH_DIR/docker-exec/dockerd.pid" \
    --bridge=none --iptables=false --ip6tables=false >"$BENCH_DIR/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  pids+=("$DOCKERD_PID")
  wait_sock "$DOCKERD_SOCK"
}

rss_kb() { # rss_kb PID...: summed VmRSS in KiB
  local total=0 pid kb
  for pid in "$@"; do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + kb))
  done
  echo "$total"
}
