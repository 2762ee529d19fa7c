#!/usr/bin/env bash
# `estiba images` with 1,000 images (distinct IDs sharing one busybox layer), and `docker images`
# against the same estibad, and `docker images` against dockerd with the same images when installed.
source "$(dirname "$0")/common.sh"
build
"$BIN/estiba-mkimage" many --count 1000 -o "$BENCH_DIR/many.tar"
start_estibad
"$BIN/estiba" -H "unix://$ESTIBA_SOCK" load -q -i "$BENCH_DIR/many.tar" >/dev/null
echo "images in estibad: $("$BIN/estiba" -H "unix://$ESTIBA_SOCK" images -q | wc -l)"
cmds=(-n "estiba images" "$BIN/estiba -H unix://$ESTIBA_SOCK images"
      -n "docker images (estibad)" "docker -H unix://$ESTIBA_SOCK images")
if have_dockerd; then
  start_dockerd
  docker -H "unix://$DOCKERD_SOCK" load -q -i "$BENCH_DIR/many.tar" >/dev/null
  cmds+=(-n "docker images (dockerd)" "docker -H unix://$DOCKERD_SOCK images")
fi
hyperfine -N --warmup 3 --runs "${RUNS:-30}" --output=null "${cmds[@]}"
