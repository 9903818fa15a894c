#!/usr/bin/env bash
# xds scale benchmark: the delta discovery server (svc-xds) in process with its real gRPC server,
# 100 real gRPC client streams (one channel each, as 100 ztunnels), and a synthesised mesh of
# 10,000 pods in 500 services with 200 L4 policies (Workload/Service/Authorization protos, no
# Kubernetes). Prints, with the goals and PASS/MISS:
#   - time from a snapshot change (one pod changed) to the push reaching all clients (p50/p99
#     over 50 changes, after 10 warm-up changes); goal < 100 ms
#   - resources sent per client for one pod change; goal exactly 1 (O(1), not the world)
#   - bytes per workload on the wire (serialized Resource, average); goal < 300
#   - initial sync time and bytes for one client (and for all clients at once)
#
#   integration-tests/bench/xds-scale.sh
#
# It runs svc-xds's ScaleBenchmark test class, which is skipped unless -Dxds.bench=true (so the
# normal `./mvnw test` never runs it). Settings (environment): XBENCH_PODS (10000),
# XBENCH_SERVICES (500), XBENCH_POLICIES (200), XBENCH_CLIENTS (100), XBENCH_CHANGES (50),
# XBENCH_WARMUP (10), XBENCH_GRPC_PORT/XBENCH_HTTP_PORT/XBENCH_METRICS_PORT (56110/56121/56114),
# XBENCH_JAVA_HOME, XBENCH_MVN_FLAGS (default "-o": offline; set to "" to let
# Maven download). Extra arguments go to Maven. The report is also left in
# svc-xds/target/xds-scale-bench.txt; the server's log in svc-xds/target/quarkus.log.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export JAVA_HOME="${XBENCH_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
report="$repo/svc-xds/target/xds-scale-bench.txt"
mkdir -p "$repo/svc-xds/target"
rm -f "$report"

# Private test ports, so that a concurrent `./mvnw test` of svc-xds (55010/55021/55014) does not collide.
props=(-Dxds.bench=true
    "-Dquarkus.grpc.server.test-port=${XBENCH_GRPC_PORT:-56110}"
    "-Dquarkus.http.test-port=${XBENCH_HTTP_PORT:-56121}"
    "-Dquarkus.management.test-port=${XBENCH_METRICS_PORT:-56114}")
[[ -n "${XBENCH_PODS:-}" ]] && props+=("-Dxds.bench.pods=$XBENCH_PODS")
[[ -n "${XBENCH_SERVICES:-}" ]] && props+=("-Dxds.bench.services=$XBENCH_SERVICES")
[[ -n "${XBENCH_POLICIES:-}" ]] && props+=("-Dxds.bench.policies=$XBENCH_POLICIES")
[[ -n "${XBENCH_CLIENTS:-}" ]] && props+=("-Dxds.bench.clients=$XBENCH_CLIENTS")
[[ -n "${XBENCH_CHANGES:-}" ]] && props+=("-Dxds.bench.changes=$XBENCH_CHANGES")
[[ -n "${XBENCH_WARMUP:-}" ]] && props+=("-Dxds.bench.warmup=$XBENCH_WARMUP")

# shellcheck disable=SC2086
# -am: on a fresh clone shared-proto is in no local repository (the README's test command runs
# `verify`, not `install`), so it is built in the same reactor.
(cd "$repo" && ./mvnw -B -q ${XBENCH_MVN_FLAGS--o} -pl svc-xds -am test \
    -Dtest='dev.ambient.xds.discovery.ScaleBenchmark' -Dsurefire.failIfNoSpecifiedTests=false \
    "${props[@]}" "$@") >"$repo/svc-xds/target/xds-scale-bench.mvn.log" 2>&1 || {
    status=$?
    tail -50 "$repo/svc-xds/target/xds-scale-bench.mvn.log" >&2
    echo "xds-scale: the benchmark run failed (exit $status); Maven's output: svc-xds/target/xds-scale-bench.mvn.log" >&2
    [[ -f "$report" ]] && cat "$report"
    exit "$status"
}
cat "$report"
