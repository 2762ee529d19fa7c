#!/usr/bin/env bash
# README command 1: installs dependencies, builds everything (release), starts estibad on the
# default socket, loads a sample busybox image made offline and runs a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo build --release --workspace --bins

bin=target/release
sock=/run/estiba/estiba.sock
export DOCKER_HOST=unix://$sock

if ! "$bin/estiba" -H "unix://$sock" version >/dev/null 2>&1; then
  mkdir -p /var/log/estiba
  nohup "$bin/estibad" >/var/log/estiba/estibad.log 2>&1 &
  echo "estibad started (pid $!), log: /var/log/estiba/estibad.log"
  for _ in $(seq 1 100); do
    [ -S "$sock" ] && "$bin/estiba" version >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

sample=$(mktemp -d)/busybox.tar
"$bin/estiba-mkimage" busybox -o "$sample" --tag busybox:latest
"$bin/estiba" load -i "$sample"
"$bin/estiba" images
"$bin/estiba" run --rm busybox echo "hello from a container run by estibad"
echo
echo "estibad is running. Try: export DOCKER_HOST=$DOCKER_HOST; docker images"
