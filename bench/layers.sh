#!/usr/bin/env bash
# Issue 4: an 8-layer image (8 × 4 MB of noise, built with estiba) pushed to and pulled from a
# local docker-registry, with layers in parallel (max-concurrent-downloads 3 and -uploads 5,
# Docker's defaults) against one at a time (both 1). Each pull starts without the image; each
# push starts from an empty registry (a full upload of every blob).
source "$(dirname "$0")/common.sh"
build
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
REG=127.0.0.1:$PORT
mkdir -p "$BENCH_DIR/registry" "$BENCH_DIR/ctx"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n' \
  "$BENCH_DIR/registry" "$REG" >"$BENCH_DIR/registry.yml"
docker-registry serve "$BENCH_DIR/registry.yml" >"$BENCH_DIR/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
"$BIN/estiba-mkimage" busybox -o "$BENCH_DIR/busybox.tar" --tag busybox:latest
{
  echo "FROM busybox"
  for i in $(seq 1 8); do echo "RUN head -c 4000000 /dev/urandom > /layer$i"; done
} >"$BENCH_DIR/ctx/Dockerfile"

measure() { # measure LABEL: push and pull timings with the running estibad
  local E="docker -H unix://$ESTIBA_SOCK" tag="$REG/bench/layers-$1"
  $E load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
  DOCKER_BUILDKIT=0 $E build -q -t eight:1 "$BENCH_DIR/ctx" >/dev/null
  $E tag eight:1 "$tag:1"
  $E push "$tag:1" >/dev/null
  hyperfine --warmup 1 --runs "${RUNS:-6}" -n "pull, $1" \
    --prepare "$E rmi -f $tag:1 eight:1 >/dev/null 2>&1 || true; sync" "$E pull -q $tag:1"
  # The registry's storage is wiped before each push, so every blob is uploaded (no mount).
  hyperfine --runs "${RUNS:-6}" -n "push, $1" \
    --prepare "rm -rf $BENCH_DIR/registry/docker; sync" "$E push $tag:1 >/dev/null"
}

start_estibad
measure parallel
kill "$ESTIBAD_PID"; wait "$ESTIBAD_PID" 2>/dev/null || true
ESTIBAD_ARGS="--max-concurrent-downloads 1 --max-concurrent-uploads 1" start_estibad
measure sequential
