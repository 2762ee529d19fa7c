#!/usr/bin/env bash
# `docker load` of a ~75 MB single-layer image: estibad vs dockerd (when installed), with hyperfine.
# Each run loads into a store that does not have the image (the prepare step removes it).
source "$(dirname "$0")/common.sh"
build
"$BIN/estiba-mkimage" big -o "$BENCH_DIR/big.tar" --tag big:latest
ls -l "$BENCH_DIR/big.tar"
start_estibad
cmds=(-n estibad --prepare "DOCKER_HOST=unix://$ESTIBA_SOCK docker rmi -f big:latest >/dev/null 2>&1 || true; sync"
      "DOCKER_HOST=unix://$ESTIBA_SOCK docker load -q -i $BENCH_DIR/big.tar")
if have_dockerd; then
  start_dockerd
  cmds+=(-n dockerd --prepare "DOCKER_HOST=unix://$DOCKERD_SOCK docker rmi -f big:latest >/dev/null 2>&1 || true; sync"
         "DOCKER_HOST=unix://$DOCKERD_SOCK docker load -q -i $BENCH_DIR/big.tar")
fi
hyperfine --warmup 1 --runs "${RUNS:-8}" "${cmds[@]}"
