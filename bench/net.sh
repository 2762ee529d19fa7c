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
create_cmds=(-n "network create (estibad)" "$E network create benchnet")
rm_cmds=(-n "network rm (estibad)" "$E network rm benchnet")
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
  create_cmds+=(-n "network create (dockerd)" "$D network create benchnet")
  rm_cmds+=(-n "network rm (dockerd)" "$D network rm benchnet")
fi
hyperfine -N --warmup 3 --runs "${RUNS:-20}" "${run_cmds[@]}"
# create is measured with rm as cleanup, rm with create as preparation.
hyperfine -N --runs "${RUNS:-20}" --conclude "$E network rm benchnet" "${create_cmds[@]:0:2}"
hyperfine -N --runs "${RUNS:-20}" --prepare "$E network create benchnet" "${rm_cmds[@]:0:2}"
if have_dockerd; then
  hyperfine -N --runs "${RUNS:-20}" --conclude "$D network rm benchnet" "${create_cmds[@]:2:2}"
  hyperfine -N --runs "${RUNS:-20}" --prepare "$D network create benchnet" "${rm_cmds[@]:2:2}"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do kill -0 "${pids[-1]}" 2>/dev/null || break; sleep 0.1; done
  ip link del "$ref_bridge" 2>/dev/null || true
fi
