#!/usr/bin/env bash
# Profiles the two ztunnels of a running ztunnel-bench.sh (started with ZBENCH_SETUP_ONLY=1, and
# ZBENCH_JVM_OPTS=-XX:+PreserveFramePointer so that perf can walk Java stacks) under iperf3 (6 s
# each way) and under wrk (16 connections, 12 s): perf record of both JVMs plus a JFR recording
# of each, then the perf samples of the data-plane threads grouped by frame (perf_groups.py).
#
#   sudo integration-tests/bench/ztunnel-profile.sh OUTDIR      (needs linux-perf)
# The summary of the last profile: ztunnel-profile.txt beside this file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: ztunnel-profile.sh OUTDIR}"; mkdir -p "$out"
NS="${ZBENCH_NS:-zbench}"
J="${ZBENCH_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin"
command -v perf >/dev/null || { echo "needs perf: apt-get install -y linux-perf" >&2; exit 1; }
# The two JVMs in the namespace, oldest first (node-a, then node-b). `|| true`: the loop's last test
# fails for the Go peers, and read must see a newline, or set -e ends the script without a word.
read -r ZA ZB < <({ ip netns pids "$NS" | while read -r p; do [ "$(cat "/proc/$p/comm")" = java ] && echo "$p"; done || true; } | sort -n | tr '\n' ' '; echo)
[ -n "${ZB:-}" ] || { echo "no ztunnel JVMs in netns $NS: start ztunnel-bench.sh with ZBENCH_SETUP_ONLY=1" >&2; exit 1; }
echo "node-a $ZA, node-b $ZB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up: the JIT must be done before sampling.
ip netns exec "$NS" wrk -t1 -c16 -d8s http://127.0.20.1:8080/100b.txt >/dev/null
ip netns exec "$NS" iperf3 -c 127.0.20.1 -B 127.0.10.1 -t 5 >/dev/null
ip netns exec "$NS" iperf3 -c 127.0.20.1 -B 127.0.10.1 -t 5 -R >/dev/null
for phase in iperf wrk; do
  for p in $ZA $ZB; do "$J/jcmd" "$p" JFR.start name=zprof settings=profile "filename=$out/$phase-$p.jfr" >/dev/null; done
  perf record -F 497 -g -p "$ZA,$ZB" -o "$out/perf-$phase.data" -- sleep 14 >/dev/null 2>&1 &
  perf_pid=$!
  if [ $phase = iperf ]; then
    ip netns exec "$NS" iperf3 -c 127.0.20.1 -B 127.0.10.1 -t 6 | grep receiver
    ip netns exec "$NS" iperf3 -c 127.0.20.1 -B 127.0.10.1 -t 6 -R | grep receiver
  else
    ip netns exec "$NS" wrk -t1 -c16 -d12s http://127.0.20.1:8080/100b.txt | grep -E 'Requests/sec'
  fi
  wait "$perf_pid"
  for p in $ZA $ZB; do
    "$J/jcmd" "$p" JFR.stop name=zprof >/dev/null
    "$J/jcmd" "$p" Compiler.perfmap >/dev/null   # /tmp/perf-<pid>.map: names for JIT frames
  done
  echo "== $phase: data-plane threads of both ztunnels, by frame group"
  perf script -i "$out/perf-$phase.data" -F comm,ip,sym,dso 2>/dev/null | python3 "$here/perf_groups.py" ztunnel-datapla \
    | tee "$out/groups-$phase.txt"
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg); JFR recordings and perf data in $out"
