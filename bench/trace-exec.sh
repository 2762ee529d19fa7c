#!/usr/bin/env bash
# One `docker exec tr true` into a running container against estibad, phase by phase: kernel
# tracepoints (process exec/fork/exit and the syscalls that mark each phase) recorded system-wide
# with `perf record` (Debian's linux-perf), which costs microseconds per event, unlike strace's
# stop-per-syscall that tripled the run. Prints one line per event, in ms from the CLI's exec;
# `RUNS=N` traces N runs one after the other (the first after a warm-up run).
# The container's shim is not a descendant of the CLI or of estibad (it was re-parented when the
# container started), so its events and its children's are kept by command name as well.
# What the lines mean is in bench/README.md, "Where docker exec's time goes".
source "$(dirname "$0")/common.sh"
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 1; }
build
"$BIN/estiba-mkimage" busybox -o "$BENCH_DIR/busybox.tar" --tag busybox:latest
start_estibad
E="docker -H unix://$ESTIBA_SOCK"
$E load -q -i "$BENCH_DIR/busybox.tar" >/dev/null
$E run -d --name tr --network none busybox sleep 600 >/dev/null
$E exec tr true
events=sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit
for s in mount unshare pivot_root fdatasync connect seccomp write exit_group; do
  events+=",syscalls:sys_enter_$s"
done
events+=",syscalls:sys_exit_fdatasync,syscalls:sys_exit_write"
for _ in $(seq "${RUNS:-1}"); do
  perf record -q -e "$events" -a -o "$BENCH_DIR/trace.data" -- \
    $E exec tr true >/dev/null 2>&1
  # Only the CLI, estibad and their descendants (other daemons may run beside); writes only
  # where they take over 0.5 ms (the cgroup.procs migration); runs of mounts folded.
  perf script -i "$BENCH_DIR/trace.data" -F comm,pid,time,event,trace 2>/dev/null |
    awk -v daemon="$ESTIBAD_PID" '
    BEGIN { keep[daemon] = 1 }
    {
      for (i = 1; i <= NF; i++) if ($i ~ /^sched:|^syscalls:/) break
      ev = $i; sub(":$", "", ev); t = $(i-1); sub(":$", "", t); t *= 1000
      comm = $1; pid = $2
      if (t0 == "" && comm == "docker" && ev ~ /process_exec/) { t0 = t; keep[pid] = 1 }
      if (t0 != "" && (comm == "estiba-shim" || comm == "7" || comm ~ /^youki/)) keep[pid] = 1
      if (t0 == "" || !(pid in keep)) next
      if (ev ~ /process_fork/) { for (k = i; k <= NF; k++) if ($k ~ /^child_pid=/) { c = $k; sub("child_pid=", "", c); keep[c] = 1 } }
      key = comm " " pid
      if (ev ~ /sys_enter_write/) { w[key] = t; next }
      if (ev ~ /sys_exit_write/) {
        if ((key in w) && t - w[key] > 0.5) printf "%8.2f  %-18s write (%.2f ms)\n", w[key] - t0, comm, t - w[key]
        delete w[key]; next
      }
      if (ev ~ /sys_enter_mount/ && last == key) next
      last = (ev ~ /sys_enter_mount/) ? key : ""
      printf "%8.2f  %-18s %s\n", t - t0, comm, ev
    }'
  echo
done
$E rm -f tr >/dev/null
