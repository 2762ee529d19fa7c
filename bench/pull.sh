#!/usr/bin/env bash
# `docker pull` and `docker push` of a ~75 MB single-layer image (gzip layer) against a local
# docker-registry on 127.0.0.1: estibad vs dockerd (when installed), with hyperfine. Each pull
# starts from a store without the image (the prepare step removes it).
source "$(dirname "$0")/common.sh"
build
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
REG=127.0.0.1:$PORT
mkdir -p "$BENCH_DIR/registry"
cat >"$BENCH_DIR/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $BENCH_DIR/registry
  delete:
    enabled: true
http:
  addr: $REG
YML
docker-registry serve "$BENCH_DIR/registry.yml" >"$BENCH_DIR/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
"$BIN/estiba-mkimage" big --compression gzip -o "$BENCH_DIR/big.tar" --tag big:latest
ls -l "$BENCH_DIR/big.tar"
start_estibad
E="docker -H unix://$ESTIBA_SOCK"
$E load -q -i "$BENCH_DIR/big.tar"
$E tag big:latest "$REG/bench/big:e"
$E push "$REG/bench/big:e" >/dev/null
cmds=(-n "estibad pull" --prepare "$E rmi -f $REG/bench/big:e big:latest >/dev/null 2>&1 || true; sync"
      "$E pull -q $REG/bench/big:e")
# Each push goes to a new repository, where the registry has no blob linked: a full upload.
push_cmds=(-n "estibad push" --prepare "$E load -q -i $BENCH_DIR/big.tar >/dev/null; date +%s%N >$BENCH_DIR/n; $E tag big:latest $REG/bench/e\$(cat $BENCH_DIR/n):1; sync"
      "$E push $REG/bench/e\$(cat $BENCH_DIR/n):1 >/dev/null")
if have_dockerd; then
  start_dockerd
  D="docker -H unix://$DOCKERD_SOCK"
  $D load -q -i "$BENCH_DIR/big.tar"
  $D tag big:latest "$REG/bench/big:d"
  $D push "$REG/bench/big:d" >/dev/null
  cmds+=(-n "dockerd pull" --prepare "$D rmi -f $REG/bench/big:d big:latest >/dev/null 2>&1 || true; sync"
         "$D pull -q $REG/bench/big:d")
  push_cmds+=(-n "dockerd push" --prepare "$D load -q -i $BENCH_DIR/big.tar >/dev/null; date +%s%N >$BENCH_DIR/n; $D tag big:latest $REG/bench/d\$(cat $BENCH_DIR/n):1; sync"
         "$D push $REG/bench/d\$(cat $BENCH_DIR/n):1 >/dev/null")
fi
hyperfine --warmup 1 --runs "${RUNS:-8}" "${cmds[@]}"
hyperfine --runs "${RUNS:-5}" "${push_cmds[@]}"
