#!/usr/bin/env bash
# 50 concurrent `docker run -d --network none busybox sleep 600`: wall time for all 50, the
# daemon's RSS with 50 containers running, and the average per-container shim RSS; estibad vs
# dockerd (when installed). Issue 3's target: estibad <= 30 MB RSS with 50 containers.
source "$(dirname "$0")/common.sh"
N=${N:-50}
build
"$BIN/estiba-mkimage" busybox -o "$BENCH_DIR/busybox.tar" --tag busybox:latest

# busy_ms: CPU time the whole machine has spent busy so far (all cores), in ms.
busy_ms() {
  awk '/^cpu / {print ($2 + $3 + $4 + $7 + $8) * 1000 / '"$(getconf CLK_TCK)"'}' /proc/stat
}

# concurrent_runs HOST: starts N containers at once, prints the wall time in ms and where the
# CPU went: the docker CLIs' own user+system time (from wait's accounting of this subshell's
# children) against the machine's busy time over the same window.
concurrent_runs() {
  (
    local start end i pid failed=0 runs=() busy0 busy1 cli
    busy0=$(busy_ms)
    start=$(date +%s%N)
    for i in $(seq "$N"); do
      docker -H "$1" run -d --network none busybox sleep 600 >/dev/null &
      runs+=($!)
    done
    for pid in "${runs[@]}"; do wait "$pid" || failed=$((failed + 1)); done
    end=$(date +%s%N)
    busy1=$(busy_ms)
    [ "$failed" -eq 0 ] || echo "$failed of $N runs failed" >&2
    # `times` prints this shell's and its children's user/system times (e.g. 0m0.512s).
    times >"$BENCH_DIR/times" # a builtin with a redirection: no fork, so it sees the children
    cli=$(tail -1 "$BENCH_DIR/times" | awk '{
      t = 0
      for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
      printf "%d", t * 1000 }')
    echo "$(((end - start) / 1000000)) ms (CPU: docker CLIs ${cli} ms, the rest $((${busy1%.*} - ${busy0%.*} - cli)) ms)"
  )
}

# avg_rss_kb PID...: average VmRSS in KiB.
avg_pss_kb() { # average Pss of the PIDs (smaps_rollup), in KiB
  [ $# -gt 0 ] || { echo 0; return; }
  local total=0 p
  for p in "$@"; do
    total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo $((total / $#))
}

avg_rss_kb() {
  [ $# -gt 0 ] || { echo 0; return; }
  echo $(($(rss_kb "$@") / $#))
}

start_estibad
E="unix://$ESTIBA_SOCK"
docker -H "$E" load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
echo "estibad: $N concurrent runs: $(concurrent_runs "$E")"
echo "estibad: running: $(docker -H "$E" ps -q | wc -l)"
echo "estibad RSS with $N containers: $(rss_kb "$ESTIBAD_PID") KiB"
mapfile -t shims < <(pgrep -f "estiba-shim.*$BENCH_DIR" || true)
echo "estiba-shim: ${#shims[@]} processes, average RSS $(avg_rss_kb "${shims[@]}") KiB right after the runs"
# An idle shim trims its resident set after 1 s (crates/estiba-shim/src/trim.rs).
sleep 2
echo "estiba-shim: average RSS $(avg_rss_kb "${shims[@]}") KiB, PSS $(avg_pss_kb "${shims[@]}") KiB after 2 s idle"

if have_dockerd; then
  start_dockerd
  D="unix://$DOCKERD_SOCK"
  docker -H "$D" load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
  echo "dockerd: $N concurrent runs: $(concurrent_runs "$D")"
  echo "dockerd: running: $(docker -H "$D" ps -q | wc -l)"
  containerd=$(pgrep -f "containerd.*$BENCH_DIR/docker-exec" -o || true)
  echo "dockerd RSS with $N containers: $(rss_kb "$DOCKERD_PID") KiB" \
    "(+ containerd $(rss_kb ${containerd:-}) KiB)"
  mapfile -t cshims < <(pgrep -f "containerd-shim.*-namespace moby" || true)
  sleep 2
  echo "containerd-shim: ${#cshims[@]} processes, average RSS $(avg_rss_kb "${cshims[@]}") KiB," \
    "PSS $(avg_pss_kb "${cshims[@]}") KiB after 2 s idle"
fi
