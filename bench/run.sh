#!/usr/bin/env bash
# `docker run --rm --network none busybox true` and `docker exec bench true`: estibad vs dockerd
# (when installed), with the real docker CLI and hyperfine. Issue 3's targets: run <= 25 ms
# median, exec <= 15 ms.
source "$(dirname "$0")/common.sh"
build
"$BIN/estiba-mkimage" busybox -o "$BENCH_DIR/busybox.tar" --tag busybox:latest
start_estibad
E="docker -H unix://$ESTIBA_SOCK"
$E load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
$E run -d --name bench --network none busybox sleep 600 >/dev/null
run_cmds=(-n "run (estibad)" "$E run --rm --network none busybox true")
exec_cmds=(-n "exec (estibad)" "$E exec bench true")
if have_dockerd; then
  start_dockerd
  D="docker -H unix://$DOCKERD_SOCK"
  $D load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
  $D run -d --name bench --network none busybox sleep 600 >/dev/null
  run_cmds+=(-n "run (dockerd)" "$D run --rm --network none busybox true")
  exec_cmds+=(-n "exec (dockerd)" "$D exec bench true")
fi
hyperfine -N --warmup 3 --runs "${RUNS:-20}" "${run_cmds[@]}"
hyperfine -N --warmup 3 --runs "${RUNS:-20}" "${exec_cmds[@]}"
echo "estibad RSS with one container: $(rss_kb "$ESTIBAD_PID") KiB"
shim=$(pgrep -f "estiba-shim --id" -n || true)
[ -n "$shim" ] && echo "one estiba-shim RSS: $(rss_kb "$shim") KiB"
$E rm -f bench >/dev/null
if have_dockerd; then $D rm -f bench >/dev/null; fi
