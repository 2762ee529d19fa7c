#!/usr/bin/env bash
# Idle RSS after start: estibad alone vs dockerd + its containerd (when installed).
source "$(dirname "$0")/common.sh"
build
start_estibad
sleep 2 # let start-up allocations settle; this is a measurement, not a test
echo "estibad idle RSS: $(rss_kb "$ESTIBAD_PID") KiB"
if have_dockerd; then
  start_dockerd
  sleep 2
  containerd_pid=$(pgrep -P "$DOCKERD_PID" containerd || true)
  echo "dockerd + containerd idle RSS: $(rss_kb "$DOCKERD_PID" $containerd_pid) KiB"
fi
