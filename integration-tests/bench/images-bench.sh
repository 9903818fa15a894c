#!/usr/bin/env bash
# The services' container images: size, start-to-ready time and resident memory in a container.
#
#   integration-tests/bench/images-bench.sh [-n runs] [-i idle-seconds] [-m memory|none] [-c] [service ...]
#
# For each image ambient-mesh/<service>:<tag> (build them first: ./mvnw -B package -DskipTests
# -Dimages) it starts the service alone in a container the way native-images/images/build.sh's
# training run does (native-images/images/standalone.sh: no network but its own loopback, the
# capabilities and read-only root its manifest gives, the image's JAVA_OPTS with the AOT cache),
# measures from `podman run` to /healthz/ready = 200, waits, reads the JVM's VmRSS, checks that
# the JVM used the AOT cache (-XX:AOTMode=on: it would not start without), and removes the container. Each container gets the memory limit of
# its manifest in k8s/ (which also picks the JVM's collector), unless -m gives one for all
# (e.g. 1g) or none; -c adds runs without the cache (JAVA_OPTS without -XX:AOTCache) for
# comparison. Also measured: `podman run` of a no-op in the same image (what the container
# itself costs) and Quarkus's own "started in". Prints a table; keeps results.tsv and every log
# under $OUT (default /tmp/images-bench). As root, with podman (native-images/images/podman-setup.sh).
# Goals (issue 14): each JVM image under 150 MB, ready under 1 s with the AOT cache.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tag="${IMAGE_TAG:-0.1.0}"
out="${OUT:-/tmp/images-bench}"
archives="$repo/native-images/target/images"
runs=3 idle=3 memory=manifest compare=false
while getopts "n:i:m:ch" opt; do
  case "$opt" in
    n) runs="$OPTARG" ;; i) idle="$OPTARG" ;; m) memory="$OPTARG" ;; c) compare=true ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(ca xds ztunnel waypoint cni-agent)

die() { echo "images-bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
command -v podman >/dev/null || die "podman missing (native-images/images/podman-setup.sh)"
# shellcheck source=../../native-images/images/standalone.sh
. "$repo/native-images/images/standalone.sh"
mkdir -p "$out/logs"

started=()
cleanup() { local c; for c in "${started[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done; rm -rf "$out/state"; }
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
manifest_memory() { # service: the memory limit its manifest sets, in podman's units
  local f
  case "$1" in
    ca|xds) f="$repo/k8s/$1/deployment.yaml" ;; ztunnel|cni-agent) f="$repo/k8s/$1/daemonset.yaml" ;;
    waypoint) f="$repo/k8s/waypoint/template.yaml" ;;
  esac
  grep -A3 'limits:' "$f" | awk '/memory:/ {v = $2; sub(/Mi$/, "m", v); sub(/Gi$/, "g", v); print v; exit}'
}
image_java_opts() { podman image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$1" | sed -n 's/^JAVA_OPTS=//p'; }

# One run: sets ready_ms (0 if not ready in 60 s), rss_mib, aot (yes/no), started_ms (Quarkus's).
run_once() { # service image name log [java_opts]
  local s="$1" image="$2" name="$3" log="$4" opts="${5:-}" t0 deadline pid limit=()
  started+=("$name")
  case "$memory" in
    none) ;; manifest) limit=(--memory "$(manifest_memory "$s")") ;; *) limit=(--memory "$memory") ;;
  esac
  # The manifest's environment besides JAVA_OPTS (the ztunnel's MALLOC_ARENA_MAX and its own
  # JDK_JAVA_OPTIONS, with which -XX:AOTMode=on must still find the cache usable).
  local envs=() kv
  while IFS= read -r kv; do envs+=(-e "$kv"); done < <(pod_env "$s")
  t0=$(now_ms)
  standalone_start "$s" "$image" "$name" "$out/state/$name" "$opts" "${limit[@]}" "${envs[@]}"
  ready_ms=0 rss_mib=0
  deadline=$((t0 + 60000))
  pid="$container_pid"   # the JVM: run-java execs it
  while [ "$(now_ms)" -lt $deadline ]; do
    if [ "$(pid_curl "$pid" /healthz/ready 15021)" = 200 ]; then ready_ms=$(( $(now_ms) - t0 )); break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  if [ "$ready_ms" -gt 0 ]; then
    sleep "$idle"
    rss_mib="$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")"
  fi
  podman logs "$name" >"$log" 2>&1 || true
  # A JVM that cannot use its cache says so ("[aot] ... An error has occurred while processing
  # the AOT cache", "Unable to use AOT cache") and starts without it.
  if grep -qiE '\[aot *\].*(error|unable|mismatch|disabled)|AOT cache.*(not|unable)' "$log"; then aot=no; else aot=yes; fi
  started_ms="$(sed -n 's/.* started in \([0-9.]*\)s\..*/\1/p' "$log" | head -1 | awk '{printf "%d", $1 * 1000}')"
  standalone_stop "$name"
}

printf 'service\tmode\tsize_mb\tarchive_mb\truns\tready_ms_median\tready_ms_all\trss_mib_median\taot_cache_used\tnoop_container_ms\tquarkus_started_ms_median\tmemory_limit\n' >"$out/results.tsv"
for s in "${services[@]}"; do
  image="ambient-mesh/$s:$tag"
  podman image exists "$image" || die "$image missing: ./mvnw -B package -DskipTests -Dimages"
  size_mb="$(podman image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f", $1 / 1000000}')"
  archive_mb=-
  [ -f "$archives/$s.oci.tar" ] && archive_mb="$(du -m "$archives/$s.oci.tar" | cut -f1)"
  # What the container alone costs: podman run of a no-op in this image, same options.
  noops=()
  for _ in 1 2 3; do
    t0=$(now_ms)
    # shellcheck disable=SC2046
    podman run --rm --network none $(pod_opts "$s") --entrypoint /bin/sh "$image" -c : >/dev/null 2>&1 || true
    noops+=($(( $(now_ms) - t0 )))
  done
  noop_ms="$(printf '%s\n' "${noops[@]}" | median)"
  limit_shown="$memory"; [ "$memory" = manifest ] && limit_shown="$(manifest_memory "$s")"
  helper=""
  # xds needs a ca beside it; the waypoint is ready once an xds has sent it a configuration, so
  # both run beside it (standalone.sh, control_plane_start), started once for all runs.
  case "$s" in
    xds|waypoint)
      helper="ambient-bench-$s-$$-cp"
      started+=("$helper-ca" "$helper-xds")
      what=ca; [ "$s" = waypoint ] && what=ca+xds
      control_plane_start "$helper" "$out/state/$helper" "$what" || die "no control plane for $s" ;;
  esac
  modes=(aot)
  $compare && modes+=(jvm)
  for mode in "${modes[@]}"; do
    # With the cache: the image's own JAVA_OPTS and -XX:AOTMode=on, with which a JVM that cannot
    # use its cache stops instead of starting without it (so "used" is a fact, not a guess).
    opts="$(image_java_opts "$image") -XX:AOTMode=on"
    [ "$mode" = jvm ] && opts="$(image_java_opts "$image" | sed 's/ *-XX:AOTCache=[^ ]*//')"
    readies=() rsses=() starteds=() used=yes
    for r in $(seq 1 "$runs"); do
      name="ambient-bench-$s-$$"
      run_once "$s" "$image" "$name" "$out/logs/$s-$mode-$r.log" "$opts"
      if [ "$ready_ms" -gt 0 ]; then readies+=("$ready_ms"); rsses+=("$rss_mib"); starteds+=("${started_ms:-0}"); fi
      [ "$mode" = aot ] && [ "$aot" = no ] && used=no
    done
    [ "$mode" = jvm ] && used=-
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$mode" "$size_mb" "$archive_mb" "${#readies[@]}" \
      "$(printf '%s\n' "${readies[@]}" | median)" "$(IFS=,; echo "${readies[*]}")" \
      "$(printf '%s\n' "${rsses[@]}" | median)" "$used" "$noop_ms" "$(printf '%s\n' "${starteds[@]}" | median)" \
      "$limit_shown" >>"$out/results.tsv"
    echo "  $s $mode: ready ${readies[*]:-never} ms, RSS ${rsses[*]:-?} MiB, AOT cache used: $used" >&2
  done
  [ -n "$helper" ] && control_plane_stop "$helper"
done

awk -F'\t' 'NR == 1 {next} { printf "%-10s %-4s %7s MB %7s MB %6s %7s ms %7s ms %7s ms %6s MiB %6s %s\n", $1, $2, $3, $4, $5 "/'"$runs"'", $6, $10, $11, $8, $12, $9 }
  BEGIN { printf "%-10s %-4s %10s %10s %6s %10s %10s %10s %10s %6s %s\n", "service", "mode", "image", "archive", "ready", "to ready", "no-op ctr", "quarkus", "RSS", "limit", "AOT cache used" }' "$out/results.tsv"
