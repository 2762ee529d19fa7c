#!/usr/bin/env bash
# estiba-shim's resident set while its container is busy and while it is idle: a container
# printing a line every 200 ms, one printing as fast as it can (json-file log rotated at 1 MB),
# and one sleeping; RSS and PSS of each shim at 1, 3, 5 and 8 s. Issue 3's target: <= 1 MB.
source "$(dirname "$0")/common.sh"
build
"$BIN/estiba-mkimage" busybox -o "$BENCH_DIR/busybox.tar" --tag busybox:latest >/dev/null
start_estibad
E="docker -H unix://$ESTIBA_SOCK"
$E load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
$E run -d --name steady --network none busybox \
  sh -c 'while true; do echo line; sleep 0.2; done' >/dev/null
$E run -d --name flood --network none --log-opt max-size=1m --log-opt max-file=2 busybox \
  sh -c 'while true; do echo line; done' >/dev/null
$E run -d --name idle --network none busybox sleep 600 >/dev/null
elapsed=0
for wait in 1 2 2 3; do
  sleep "$wait"
  elapsed=$((elapsed + wait))
  for n in steady flood idle; do
    id=$($E inspect -f '{{.Id}}' "$n")
    shim=$(pgrep -f "estiba-shim --id $id" -n)
    pss=$(awk '/^Pss:/ {s += $2} END {print s}' "/proc/$shim/smaps_rollup")
    printf '%2ss %-6s shim RSS %5s KiB  PSS %5s KiB\n' "$elapsed" "$n" "$(rss_kb "$shim")" "$pss"
  done
done
$E rm -f steady flood idle >/dev/null
