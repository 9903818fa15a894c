# Sourced by build.sh (the AOT training run) and integration-tests/bench/images-bench.sh: how each
# service's image starts alone in a container, with no network but its own loopback
# (`--network none`: no port of the machine is taken, so it runs beside tests and a mesh in a
# box), and how to reach it: the caller probes from the host through the container's network
# namespace (nsenter). The waypoint joins the network namespace of an xds container started first.
#
# standalone_start SERVICE IMAGE NAME STATEDIR [JAVA_OPTS [PODMAN_OPTION...]]: starts container
# NAME (detached) and sets `container_pid`. STATEDIR (a host directory, mounted at /state) gets what the service reads
# and, in training, the AOT cache the JVM writes at exit.
# standalone_ready NAME [PORT]: 0 once /healthz/ready answers 200 inside the container (an xds
# started as xds-for-waypoint answers on 15921).
# standalone_traffic NAME: what every deployment sees (probes, a metrics scrape).
# standalone_stop NAME: SIGTERM, waits for the exit (a training JVM writes its cache then), removes.

samples_dir="${samples_dir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../integration-tests/meshbox/samples" && pwd)}"

# The pods' options (also the mesh in a box's, --images): no capability beyond what the manifests
# in k8s/ grant, read-only root, /tmp in memory (the manifests' emptyDir).
pod_opts() { # service
  local common=(--read-only --tmpfs /tmp:rw,mode=1777,size=64m --security-opt no-new-privileges --cap-drop ALL)
  case "$1" in
    ca|xds|waypoint) echo "${common[*]}" ;;
    # NET_ADMIN: SO_MARK, IP_TRANSPARENT; SYS_ADMIN: setns into the pods (k8s/ztunnel/daemonset.yaml)
    ztunnel) echo "${common[*]} --cap-add NET_ADMIN --cap-add SYS_ADMIN" ;;
    # NET_ADMIN: iptables in the pods; SYS_ADMIN: nsenter (setns); SYS_PTRACE: /proc/PID/ns/net
    # of other processes (k8s/cni-agent/daemonset.yaml)
    cni-agent) echo "${common[*]} --cap-add NET_ADMIN --cap-add SYS_ADMIN --cap-add SYS_PTRACE" ;;
  esac
}

standalone_args() { # service: the service's arguments (paths inside the container)
  case "$1" in
    ca) echo "-Dca.mode=standalone -Dca.standalone.dir=/tmp/ca -Dca.standalone.token-file=/state/tokens.txt" ;;
    xds) echo "-Dxds.source=directory -Dxds.directory=/samples -Dxds.waypoint.enabled=false" ;;
    # the waypoint's own ports: it shares a loopback with the xds (15021, 15014 there)
    xds-for-waypoint) echo "-Dxds.source=directory -Dxds.directory=/samples -Dxds.waypoint.enabled=false -Dquarkus.http.port=15921 -Dquarkus.management.port=15914" ;;
    ztunnel) echo "-Dztunnel.node-name=standalone -Dztunnel.node-ip=127.0.0.1 -Dztunnel.local-config=/state/mesh.yaml -Dztunnel.identity.source=local -Dztunnel.identity.ca-dir=/tmp/ca" ;;
    waypoint) echo "-Dwaypoint.gateway=default/waypoint -Dwaypoint.xds-address=127.0.0.1:15010 -Dwaypoint.identity.source=local -Dwaypoint.identity.ca-dir=/tmp/ca -Dwaypoint.drain-minimum=0s -Dwaypoint.drain-timeout=1s" ;;
    cni-agent) echo "-Dcni.node-name=standalone -Dcni.source=directory -Dcni.directory=/samples -Dcni.zds-socket=/tmp/ztunnel.sock -Dcni.plugin-socket=/tmp/cni.sock" ;;
  esac
}

standalone_start() { # service image name statedir [java_opts [podman options...]]
  local service="$1" image="$2" name="$3" state="$4" java_opts="${5:-}" net=(--network none) env=()
  shift 4; [ $# -gt 0 ] && shift
  mkdir -p "$state"
  chmod 0777 "$state"   # the non-root images write their cache there
  printf 'standalone-token default standalone\n' >"$state/tokens.txt"
  : >"$state/mesh.yaml"
  [ "$service" = waypoint ] && net=(--network "container:$name-xds")
  [ -n "$java_opts" ] && env=(-e "JAVA_OPTS=$java_opts")
  # shellcheck disable=SC2046
  podman run -d --name "$name" --label dev.ambient.images=standalone "${net[@]}" "${env[@]}" \
    $(pod_opts "${service%-for-waypoint}") "$@" -v "$state:/state:rw" -v "$samples_dir:/samples:ro" \
    "$image" $(standalone_args "$service") >/dev/null
  container_pid="$(podman inspect -f '{{.State.Pid}}' "$name")"
}

standalone_curl() { # name path [port]: curl inside the container's network namespace
  local pid
  pid="$(podman inspect -f '{{.State.Pid}}' "$1" 2>/dev/null)" && [ "${pid:-0}" != 0 ] || return 1
  pid_curl "$pid" "$2" "${3:-15021}"
}

pid_curl() { # pid path port: the same, given the container's process (no podman call: for timing)
  nsenter --net="/proc/$1/ns/net" curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$3$2"
}

standalone_ready() { [ "$(standalone_curl "$1" /healthz/ready "${2:-15021}")" = 200 ]; } # name [port]

standalone_traffic() { # name service
  local metrics=15020
  case "$2" in ca|xds) metrics=15014 ;; esac
  for _ in 1 2 3; do
    standalone_curl "$1" /healthz/ready >/dev/null || true
    standalone_curl "$1" /healthz/live >/dev/null || true
    standalone_curl "$1" /metrics "$metrics" >/dev/null || true
  done
}

standalone_stop() { # name
  podman stop -t 120 "$1" >/dev/null 2>&1 || true
  podman rm -f "$1" >/dev/null 2>&1 || true
}
