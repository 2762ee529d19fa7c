#!/usr/bin/env bash
# Volumes: `docker run --rm` with a named volume, with an anonymous volume (created and removed
# by every run), `volume create` + `volume rm`, and the copy-up of a 20 MB image directory into
# a fresh volume, estibad vs dockerd (when installed), with the real docker CLI and hyperfine.
source "$(dirname "$0")/common.sh"
build
"$BIN/estiba-mkimage" busybox -o "$BENCH_DIR/busybox.tar" --tag busybox:latest
prepare() { # prepare "docker -H ...": the image, a named volume, an image with 20 MB at /data
  local D=$1
  $D load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
  $D volume create data >/dev/null
  $D run --name mk busybox sh -c 'mkdir /data; for i in $(seq 1 200); do dd if=/dev/zero of=/data/f$i bs=100k count=1 2>/dev/null; done' >/dev/null
  $D commit --change 'VOLUME /data' mk withdata:1 >/dev/null
  $D rm mk >/dev/null
}
start_estibad
E="docker -H unix://$ESTIBA_SOCK"
prepare "$E"
named=(-n "named (estibad)" "$E run --rm --network none -v data:/d busybox true")
anon=(-n "anonymous (estibad)" "$E run --rm --network none -v /d busybox true")
cycle=(-n "create+rm (estibad)" "sh -c '$E volume create bench-v >/dev/null && $E volume rm bench-v >/dev/null'")
copy=(-n "copy-up 20 MB (estibad)" "$E run --rm --network none withdata:1 true")
if have_dockerd; then
  start_dockerd
  D="docker -H unix://$DOCKERD_SOCK"
  prepare "$D"
  named+=(-n "named (dockerd)" "$D run --rm --network none -v data:/d busybox true")
  anon+=(-n "anonymous (dockerd)" "$D run --rm --network none -v /d busybox true")
  cycle+=(-n "create+rm (dockerd)" "sh -c '$D volume create bench-v >/dev/null && $D volume rm bench-v >/dev/null'")
  copy+=(-n "copy-up 20 MB (dockerd)" "$D run --rm --network none withdata:1 true")
fi
hyperfine -N --warmup 3 --runs "${RUNS:-20}" "${named[@]}"
hyperfine -N --warmup 3 --runs "${RUNS:-20}" "${anon[@]}"
hyperfine -N --warmup 3 --runs "${RUNS:-20}" "${cycle[@]}"
hyperfine -N --warmup 2 --runs "${RUNS:-10}" "${copy[@]}"
