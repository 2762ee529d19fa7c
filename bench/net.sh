#!/usr/bin/env bash
# Networking cost: `docker run --rm busybox true` on the default bridge vs --network none, and
# `docker network create` / `docker network rm`, estibad vs dockerd (when installed; its bridge
# is pre-created and it runs with --iptables=false so it cannot touch the host's firewall).
# Issue 6's targets: bridge <= none + 10 ms; network create and rm <= 10 ms each.
source "$(dirname "$0")/common.sh"
build
"$BIN/estiba-mkimage" busybox -o "$BENCH_DIR/busybox.tar" --tag busybox:latest
start_estibad
E="docker -H unix://$ESTIBA_SOCK"
$E load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
run_cmds=(-n "none (estibad)" "$E run --rm --network none busybox true"
  -n "bridge (estibad)" "$E run --rm busybox true")
ref_bridge=""
if have_dockerd; then
  ref_bridge="drb$NET_ID"
  ip link add "$ref_bridge" type bridge
  ip addr add "10.253.$((RANDOM % 256)).1/24" dev "$ref_bridge"
  ip link set "$ref_bridge" up
  mkdir -p "$BENCH_DIR/docker-root" "$BENCH_DIR/docker-exec"
  dockerd -H "unix://$DOCKERD_SOCK" --data-root "$BENCH_DIR/docker-root" \
    --exec-root "$BENCH_DIR/docker-exec" --pidfile "$BENCH_DIR/docker-exec/dockerd.pid" \
    --bridge="$ref_bridge" --iptables=false --ip6tables=false \
    --default-address-pool "base=10.$((RANDOM % 120 + 130)).0.0/16,size=24" \
    >"$BENCH_DIR/dockerd.log" 2>&1 &
  pids+=("$!")
  wait_sock "$DOCKERD_SOCK"
  D="docker -H unix://$DOCKERD_SOCK"
  $D load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
  run_cmds+=(-n "none (dockerd)" "$D run --rm --network none busybox true"
    -n "bridge (dockerd)" "$D run --rm busybox true")
fi
hyperfine -N --warmup 3 --runs "${RUNS:-20}" "${run_cmds[@]}"
# network create / rm: N of each in a row, one docker CLI call per network (the CLI's own
# start-up, ~10 ms, is included, as in every docker command).
time_ops() { # time_ops LABEL CLI: prints the mean ms of N creates, then of N removes
  local label=$1 cli=$2 n=${RUNS:-20} t0 t1 t2 i
  t0=$(date +%s%N)
  for i in $(seq 1 "$n"); do $cli network create "bench$i" >/dev/null; done
  t1=$(date +%s%N)
  for i in $(seq 1 "$n"); do $cli network rm "bench$i" >/dev/null; done
  t2=$(date +%s%N)
  echo "network create ($label): $(( (t1 - t0) / n / 1000000 )) ms mean over $n"
  echo "network rm ($label): $(( (t2 - t1) / n / 1000000 )) ms mean over $n"
}
time_ops estibad "$E"
api_ops() { # api_ops LABEL SOCKET: median ms of N POST /networks/create, then of N DELETEs (no CLI)
  local label=$1 sock=$2 n=${RUNS:-20} i
  for i in $(seq 1 "$n"); do
    curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$sock" -X POST \
      -H 'Content-Type: application/json' -d "{\"Name\":\"api$i\"}" http://d/networks/create
  done | sort -n | awk -v l="$label" '{a[NR]=$1} END {printf "POST /networks/create (%s): median %.1f ms of %d\n", l, a[int((NR+1)/2)]*1000, NR}'
  for i in $(seq 1 "$n"); do
    curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$sock" -X DELETE "http://d/networks/api$i"
  done | sort -n | awk -v l="$label" '{a[NR]=$1} END {printf "DELETE /networks/{id} (%s): median %.1f ms of %d\n", l, a[int((NR+1)/2)]*1000, NR}'
}
# The bridges removed above are still being deleted in the background (each deletion holds the
# kernel's rtnl lock through an RCU grace period, which would stall the creates below).
sleep 3
api_ops estibad "$ESTIBA_SOCK"
# For scale: the CLI start-up plus one round trip.
hyperfine -N --runs "${RUNS:-20}" "$E version"
if have_dockerd; then
  time_ops dockerd "$D"
  api_ops dockerd "$DOCKERD_SOCK"
fi
# dockerd's bridge goes after dockerd has (common.sh's cleanup stops it).
if [ -n "$ref_bridge" ]; then
  trap 'cleanup; ip link del "$ref_bridge" 2>/dev/null || true' EXIT
fi
