#!/bin/sh
# Start time of the CNI plugin, which the container runtime starts once per pod and command.
# Wall time of 20 runs each (median, min, max), for:
#   VERSION                       (JVM start + print; no agent)
#   ADD of a pod outside the mesh (JVM start + JSON + one round trip to a running agent, which
#                                  answers "skip"; the result is passed through)
# with three ways of starting the JVM:
#   plain      java -cp ambient-cni.jar ...           (JDK defaults: C2, G1, default CDS)
#   flags      -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xss512k (default CDS)
#   flags+aot  the launcher: the flags and the AOT cache built at package time (JEP 514)
#
# Needs: root (no), `./mvnw -pl svc-cni-agent package -DskipTests` done (target/quarkus-app,
# target/ambient-cni, target/ambient-cni.d). Usage: svc-cni-agent/bench/cni-plugin-start.sh [runs]
set -eu
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export JAVA_HOME
java="$JAVA_HOME/bin/java"
mod=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-20}
work=$(mktemp -d /tmp/cni-bench.XXXXXX)
agent_pid=""
cleanup() {
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

jar="$mod/target/ambient-cni.d/ambient-cni.jar"
[ -f "$jar" ] || { echo "build first: ./mvnw -pl svc-cni-agent package -DskipTests" >&2; exit 1; }

# An agent reading pods from YAML: namespace "legacy" is not in the mesh.
mkdir -p "$work/yaml"
cat > "$work/yaml/pods.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: legacy, uid: bench-old}
spec: {nodeName: bench-node, containers: [{name: c, image: x}]}
YAML
"$java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -Dcni.source=directory -Dcni.directory="$work/yaml" -Dcni.node-name=bench-node \
  -Dcni.zds-socket="$work/ztunnel.sock" -Dcni.plugin-socket="$work/plugin.sock" \
  -Dquarkus.http.port=59121 -Dquarkus.management.port=59120 -Dquarkus.log.level=WARN \
  -jar "$mod/target/quarkus-app/quarkus-run.jar" > "$work/agent.log" 2>&1 &
agent_pid=$!
i=0
until [ -S "$work/plugin.sock" ]; do
  i=$((i + 1)); [ $i -lt 300 ] || { echo "agent did not start:" >&2; cat "$work/agent.log" >&2; exit 1; }
  sleep 0.1
done

conf="{\"cniVersion\":\"1.0.0\",\"name\":\"k8s\",\"type\":\"ambient-cni\",\"agent_socket\":\"$work/plugin.sock\",\"prevResult\":{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.249.9.2/24\"}]}}"
# The first ADD waits for the agent's first listing; not measured.
echo "$conf" | CNI_COMMAND=ADD CNI_NETNS=/var/run/netns/none CNI_ARGS="K8S_POD_NAMESPACE=legacy;K8S_POD_NAME=old" \
  "$mod/target/ambient-cni" > /dev/null

plain() { "$java" -cp "$jar" dev.ambient.cni.plugin.CniPlugin; }
flags() { "$java" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xss512k -cp "$jar" dev.ambient.cni.plugin.CniPlugin; }
aot() { "$mod/target/ambient-cni"; }

# $1 mode, $2 command -> prints "median min max" in ms
measure() {
  : > "$work/times"
  n=0
  while [ $n -lt "$runs" ]; do
    t0=$(date +%s%N)
    if [ "$2" = VERSION ]; then
      CNI_COMMAND=VERSION $1 < /dev/null > "$work/out"
    else
      echo "$conf" | CNI_COMMAND=ADD CNI_NETNS=/var/run/netns/none CNI_ARGS="K8S_POD_NAMESPACE=legacy;K8S_POD_NAME=old" \
        $1 > "$work/out"
    fi
    t1=$(date +%s%N)
    grep -q cniVersion "$work/out" || { echo "$1 $2 printed no result:" >&2; cat "$work/out" >&2; exit 1; }
    echo $(( (t1 - t0) / 1000 )) >> "$work/times"
    n=$((n + 1))
  done
  sort -n "$work/times" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%7.1f %7.1f %7.1f\n", m/1000, a[1]/1000, a[NR]/1000}'
}

echo "CNI plugin start, $runs runs each, wall ms: median min max   ($(nproc) cores, $("$java" -version 2>&1 | head -1))"
for cmd in VERSION ADD; do
  for mode in plain flags aot; do
    printf "%-8s %-10s %s\n" "$cmd" "$mode" "$(measure $mode $cmd)"
  done
done
