#!/usr/bin/env bash
# JVM start-up of each service's packaged app: time from process start to /healthz/ready = 200,
# and resident memory (VmRSS) after a few idle seconds, without and with a Java 25 AOT cache
# (JEP 483/514/515: one training run with -XX:AOTCacheOutput, then -XX:AOTCache).
#
#   native-images/startup-bench.sh [-n runs] [-i idle-seconds] [service ...]
#   native-images/startup-bench.sh -t [service ...]    # training runs only: $OUT/state/<service>.aot
#
# Services: ca xds ztunnel waypoint cni-agent (default: all). Needs each module's
# target/quarkus-app/quarkus-run.jar (./mvnw -B package -DskipTests) and curl. The waypoint needs
# a control plane to become ready: an xds from the same repository runs beside it.
# Environment: JAVA_HOME (default Temurin 25), REPO (default: this checkout), OUT (work directory,
# default /tmp/startup-bench). Every listener binds 127.0.99.x on a port of the module's own test
# range (5x9xx), so it runs beside tests and a mesh in a box. Results: a table on stdout and
# $OUT/results.tsv; logs of every run under $OUT/logs. JVM_FLAGS replaces the JVM options (default:
# the mesh in a box's); a cache is only used by a JVM started with the same options and the same
# JDK build, so an image trains with its own JAVA_OPTS, inside the image (native-images/README.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${REPO:-$(cd "$here/.." && pwd)}"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
java="$JAVA_HOME/bin/java"
out="${OUT:-/tmp/startup-bench}"
runs=3
idle=3
train_only=false
# The flags the mesh in a box starts every service with (integration-tests/meshbox/meshbox).
read -r -a jvm_flags <<<"${JVM_FLAGS:---enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -Xmx256m -XX:+UseSerialGC}"

while getopts "n:i:th" opt; do
  case "$opt" in
    n) runs="$OPTARG" ;;
    i) idle="$OPTARG" ;;
    t) train_only=true ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(ca xds ztunnel waypoint cni-agent)

die() { echo "startup-bench: $*" >&2; exit 1; }
[ -x "$java" ] || die "no Java at $JAVA_HOME (set JAVA_HOME to a Java 25)"
"$java" -XX:+PrintFlagsFinal -version 2>/dev/null | grep -q ' AOTCache ' || die "$java has no -XX:AOTCache (Java 25 needed)"
command -v curl >/dev/null || die "curl is needed"
mkdir -p "$out/logs" "$out/state"

quarkus_hosts() { echo "-Dquarkus.http.host=$1 -Dquarkus.management.host=$1 -Dquarkus.grpc.server.host=$1"; }

# Per service: its address, readiness port and the arguments that let it start alone.
service_args() { # service -> sets ip, ready_port, module, args
  local s="$1" st="$out/state/$1"
  mkdir -p "$st"
  case "$s" in
    ca)
      ip=127.0.99.1 ready_port=56921 module=svc-ca
      printf 'bench-token default bench\n' >"$st/tokens.txt"
      args=($(quarkus_hosts $ip) -Dquarkus.http.port=56921 -Dquarkus.management.port=56914
        -Dquarkus.grpc.server.port=56912 -Dca.mode=standalone -Dca.standalone.dir="$st/root"
        -Dca.standalone.token-file="$st/tokens.txt") ;;
    xds)
      ip=127.0.99.2 ready_port=57921 module=svc-xds
      args=($(quarkus_hosts $ip) -Dquarkus.http.port=57921 -Dquarkus.management.port=57914
        -Dquarkus.grpc.server.port=57910 -Dxds.source=directory
        -Dxds.directory="$repo/integration-tests/meshbox/samples" -Dxds.waypoint.enabled=false) ;;
    ztunnel)
      ip=127.0.99.3 ready_port=55921 module=svc-ztunnel
      : >"$st/mesh.yaml"   # no workloads: start-up of the proxy itself
      args=($(quarkus_hosts $ip) -Dquarkus.http.port=55921 -Dquarkus.management.port=55920
        -Dztunnel.node-name=bench -Dztunnel.node-ip=$ip -Dztunnel.local-config="$st/mesh.yaml"
        -Dztunnel.identity.source=local -Dztunnel.identity.ca-dir="$st/ca"
        -Dztunnel.ports.capture-address=$ip -Dztunnel.ports.outbound-capture=55901
        -Dztunnel.ports.inbound-plaintext=55906 -Dztunnel.ports.socks5=55980 -Dztunnel.ports.admin=55900
        -Dztunnel.ports.hbone=55908) ;;
    waypoint)
      ip=127.0.99.4 ready_port=58921 module=svc-waypoint
      args=($(quarkus_hosts $ip) -Dquarkus.http.port=58921 -Dquarkus.management.port=58920
        -Dwaypoint.gateway=default/waypoint -Dwaypoint.xds-address=127.0.99.2:57910
        -Dwaypoint.identity.source=local -Dwaypoint.identity.ca-dir="$st/ca"
        -Dwaypoint.listen.address=$ip -Dwaypoint.listen.hbone-port=58908
        -Dwaypoint.drain-minimum=0s -Dwaypoint.drain-timeout=1s) ;;
    cni-agent)
      ip=127.0.99.5 ready_port=59921 module=svc-cni-agent
      args=($(quarkus_hosts $ip) -Dquarkus.http.port=59921 -Dquarkus.management.port=59920
        -Dcni.node-name=bench -Dcni.source=directory -Dcni.directory="$repo/integration-tests/meshbox/samples"
        -Dcni.zds-socket="$st/ztunnel.sock" -Dcni.plugin-socket="$st/cni.sock") ;;
    *) die "unknown service $s (ca xds ztunnel waypoint cni-agent)" ;;
  esac
  jar="$repo/$module/target/quarkus-app/quarkus-run.jar"
  [ -f "$jar" ] || die "$jar missing: ./mvnw -B -pl $module -am package -DskipTests"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Starts the service; sets pid and ready_ms (0 when not ready within 60 s).
start_and_wait() { # log, extra jvm flags...
  local log="$1"; shift
  local t0; t0=$(now_ms)
  "$java" "${jvm_flags[@]}" "$@" "${args[@]}" -jar "$jar" >"$log" 2>&1 &
  pid=$!
  ready_ms=0
  local deadline=$((t0 + 60000))
  while [ "$(now_ms)" -lt $deadline ]; do
    if ! kill -0 $pid 2>/dev/null; then break; fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 0.5 "http://$ip:$ready_port/healthz/ready")" = 200 ]; then
      ready_ms=$(( $(now_ms) - t0 ))
      return 0
    fi
    sleep 0.02
  done
  echo "  not ready within 60 s (log $log):" >&2
  tail -5 "$log" >&2 || true
  return 0
}

stop() {
  kill -TERM $pid 2>/dev/null || true
  # A training run writes the cache at exit: give it time.
  for _ in $(seq 1 600); do kill -0 $pid 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL $pid 2>/dev/null || true
}

rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' /proc/$pid/status; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

helper_pid=""
cleanup() { [ -n "$helper_pid" ] && kill -TERM $helper_pid 2>/dev/null || true; }
trap cleanup EXIT

printf 'service\tmode\truns\tready_ms_median\tready_ms_all\trss_mib_median\n' >"$out/results.tsv"
for s in "${services[@]}"; do
  service_args "$s"
  if [ "$s" = waypoint ]; then
    # The waypoint is ready only with a first configuration from a control plane.
    saved=("${args[@]}"); saved_jar="$jar"; saved_ip=$ip; saved_port=$ready_port
    service_args xds
    start_and_wait "$out/logs/xds-for-waypoint.log"
    helper_pid=$pid
    [ "$ready_ms" -gt 0 ] || die "the xds the waypoint needs did not get ready"
    args=("${saved[@]}"); jar="$saved_jar"; ip=$saved_ip; ready_port=$saved_port
  fi
  cache="$out/state/$s.aot"
  rm -f "$cache"
  echo "== $s: training run for the AOT cache ($cache)" >&2
  start_and_wait "$out/logs/$s-train.log" -XX:AOTCacheOutput="$cache"
  # A little traffic on the endpoints every deployment sees: probes and a scrape.
  for _ in 1 2 3; do
    curl -s -o /dev/null --max-time 2 "http://$ip:$ready_port/healthz/ready" || true
    curl -s -o /dev/null --max-time 2 "http://$ip:$ready_port/healthz/live" || true
  done
  sleep 1
  stop
  [ -f "$cache" ] || die "no cache written for $s (see $out/logs/$s-train.log)"
  if $train_only; then
    echo "  $cache" >&2
    if [ "$s" = waypoint ]; then kill -TERM $helper_pid 2>/dev/null || true; wait $helper_pid 2>/dev/null || true; helper_pid=""; fi
    continue
  fi
  for mode in jvm aot; do
    flags=()
    [ "$mode" = aot ] && flags=(-XX:AOTCache="$cache")
    readies=() rsses=()
    for r in $(seq 1 "$runs"); do
      start_and_wait "$out/logs/$s-$mode-$r.log" "${flags[@]}"
      if [ "$ready_ms" -gt 0 ]; then
        sleep "$idle"
        readies+=("$ready_ms"); rsses+=("$(rss_mib)")
      fi
      stop
    done
    rm_ready=$(printf '%s\n' "${readies[@]}" | median)
    rm_rss=$(printf '%s\n' "${rsses[@]}" | median)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$mode" "${#readies[@]}" "$rm_ready" "$(IFS=,; echo "${readies[*]}")" "$rm_rss" >>"$out/results.tsv"
    echo "  $mode: ready ${readies[*]} ms, RSS ${rsses[*]} MiB" >&2
  done
  if [ "$s" = waypoint ]; then kill -TERM $helper_pid 2>/dev/null || true; wait $helper_pid 2>/dev/null || true; helper_pid=""; fi
done

$train_only && exit 0
# The table, with AOT/JVM ratios.
awk -F'\t' 'NR > 1 { key = $1; if ($2 == "jvm") { jr[key] = $4; jm[key] = $6 } else { ar[key] = $4; am[key] = $6 }
    if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
  END {
    printf "%-10s %14s %14s %8s %12s %12s %8s\n", "service", "ready jvm ms", "ready aot ms", "ratio", "RSS jvm MiB", "RSS aot MiB", "ratio"
    for (i = 1; i <= n; i++) { k = order[i]
      printf "%-10s %14d %14d %8.2f %12d %12d %8.2f\n", k, jr[k], ar[k], (jr[k] ? ar[k] / jr[k] : 0), jm[k], am[k], (jm[k] ? am[k] / jm[k] : 0) }
  }' "$out/results.tsv"
