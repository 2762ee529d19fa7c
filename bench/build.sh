#!/usr/bin/env bash
# Builds over the classic protocol with the real docker CLI (DOCKER_BUILDKIT=0), estibad vs
# dockerd (when installed): a cold two-stage build (a 10 MB COPY, two RUN, --no-cache) and a
# fully cached rebuild of the same context. RUN steps use --network none on both daemons.
source "$(dirname "$0")/common.sh"
build
"$BIN/estiba-mkimage" busybox -o "$BENCH_DIR/busybox.tar" --tag busybox:latest
ctx=$BENCH_DIR/ctx
mkdir -p "$ctx"
head -c $((10 * 1024 * 1024)) /dev/urandom >"$ctx/big.bin"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM busybox AS build
COPY big.bin /big.bin
RUN md5sum /big.bin > /sum
FROM busybox
COPY --from=build /sum /sum
RUN cat /sum > /sum2
DOCKERFILE
export DOCKER_BUILDKIT=0
start_estibad
E="docker -H unix://$ESTIBA_SOCK"
$E load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
$E build -q --network none -t b "$ctx" >/dev/null
cold=(-n "cold two-stage (estibad)" "$E build -q --no-cache --network none -t b $ctx")
cached=(-n "cached rebuild (estibad)" "$E build -q --network none -t b $ctx")
if have_dockerd; then
  start_dockerd
  D="docker -H unix://$DOCKERD_SOCK"
  $D load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
  $D build -q --network none -t b "$ctx" >/dev/null
  cold+=(-n "cold two-stage (dockerd)" "$D build -q --no-cache --network none -t b $ctx")
  cached+=(-n "cached rebuild (dockerd)" "$D build -q --network none -t b $ctx")
fi
hyperfine -N --warmup 2 --runs "${RUNS:-10}" "${cold[@]}"
hyperfine -N --warmup 3 --runs "${RUNS:-20}" "${cached[@]}"
# The daemon's own time for a cached rebuild (no docker CLI start-up, no context walk).
tar -C "$ctx" -cf "$BENCH_DIR/ctx.tar" .
hyperfine -N --warmup 3 --runs "${RUNS:-20}" \
  -n "cached rebuild, POST /build only (estibad)" \
  "curl -sf --unix-socket $ESTIBA_SOCK -X POST -H 'Expect:' -H 'Content-Type: application/x-tar' -T $BENCH_DIR/ctx.tar 'http://x/build?q=1&networkmode=none'"
