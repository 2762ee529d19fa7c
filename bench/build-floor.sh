#!/usr/bin/env bash
# The floor of a cached rebuild through the docker CLI: `DOCKER_BUILDKIT=0 docker build` of the
# build.sh context (10 MB file + Dockerfile) and of a Dockerfile-only context against
# build-drain.py, a stand-in daemon that only drains the context and answers. What is left of
# build.sh's target (≤ 30 ms) above these figures is the daemon's budget.
source "$(dirname "$0")/common.sh"
ctx=$BENCH_DIR/ctx
mkdir -p "$ctx" "$BENCH_DIR/ctx0"
head -c $((10 * 1024 * 1024)) /dev/urandom >"$ctx/big.bin"
printf 'FROM busybox\nCOPY big.bin /big.bin\n' >"$ctx/Dockerfile"
cp "$ctx/Dockerfile" "$BENCH_DIR/ctx0/"
python3 "$(dirname "$0")/build-drain.py" "$BENCH_DIR/drain.sock" &
pids+=("$!")
wait_sock "$BENCH_DIR/drain.sock"
export DOCKER_BUILDKIT=0
D="docker -H unix://$BENCH_DIR/drain.sock"
hyperfine -N --warmup 3 --runs "${RUNS:-30}" \
  -n "docker build, 10 MB context, drain-only daemon" "$D build -q -t b $ctx" \
  -n "docker build, Dockerfile-only context, drain-only daemon" "$D build -q -t b $BENCH_DIR/ctx0"
