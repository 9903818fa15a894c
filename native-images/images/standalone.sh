# Sourced by build.sh (the AOT training run) and integration-tests/bench/images-bench.sh: how each
# service's image starts alone in a container, with no network but its own loopback
# (`--network none`: no port of the machine is taken, so it runs beside tests and a mesh in a
# box), and how to reach it: the caller probes from the host through the container's network
# namespace (nsenter). The control plane speaks TLS with token authentication only, so xds and the
# waypoint start beside a control plane of their own (control_plane_start): a ca, and for the
# waypoint an xds too, in one network namespace that the service then joins; the ca's root and the
# tokens are files in the control plane's directory, mounted at /cp (as a cluster mounts the
# istio-ca-root-cert ConfigMap and a projected token).
#
# control_plane_start NAME DIR ca|ca+xds: starts NAME-ca (and NAME-xds), waits until they are ready
# and sets `control_plane` (the container whose network the service joins); control_plane_stop
# removes them and unsets it.
#
# standalone_start SERVICE IMAGE NAME STATEDIR [JAVA_OPTS [PODMAN_OPTION...]]: starts container
# NAME (detached) and sets `container_pid`. STATEDIR (a host directory, mounted at /state) gets what the service reads
# and, in training, the AOT cache the JVM writes at exit.
# standalone_ready NAME [PORT]: 0 once /healthz/ready answers 200 inside the container (the
# control plane's ca answers on 15821, its xds on 15921).
# standalone_traffic NAME: what every deployment sees (probes, a metrics scrape).
# standalone_wait NAME PORT: standalone_ready within 120 s, or the container's log and 1.
# standalone_stop NAME: SIGTERM, waits for the exit (a training JVM writes its cache then), removes.

samples_dir="${samples_dir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../integration-tests/meshbox/samples" && pwd)}"

# pod_env SERVICE: the environment the service's manifest sets besides JAVA_OPTS (the image's), one
# NAME=VALUE a line: the ztunnel's MALLOC_ARENA_MAX and its own JVM options (JDK_JAVA_OPTIONS, read
# by the java launcher: sizes that leave the AOT cache valid, native-images K8sJvmOptionsTest). The
# mesh in a box (--images) starts the ztunnel with them; a training run does not (build.sh trains
# with JAVA_OPTS alone, as ServiceJvmOptionsTest shows is enough).
pod_env() { # service
  local manifest name
  case "$1" in
    ztunnel) manifest="$(dirname "${BASH_SOURCE[0]}")/../../k8s/ztunnel/daemonset.yaml" ;;
    *) return 0 ;;
  esac
  for name in MALLOC_ARENA_MAX JDK_JAVA_OPTIONS; do
    awk -v n="$name" '$0 ~ "name: " n "$" { getline; sub(/^ *value: */, ""); gsub(/"/, ""); print n "=" $0; exit }' "$manifest"
  done
}

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

# The control plane's files as the services read them (/cp: control_plane_files).
cp_client_tls="-Dxds.tls.ca-address=127.0.0.1:15012 -Dxds.tls.ca-server-name=ca.istio-system.svc -Dxds.tls.root-cert-file=/cp/ca/root-cert.pem -Dxds.tls.token-file=/cp/xds.token -Dxds.auth.mode=file -Dxds.auth.token-file=/cp/tokens.txt"

standalone_args() { # service: the service's arguments (paths inside the container)
  case "$1" in
    ca) echo "-Dca.mode=standalone -Dca.standalone.dir=/tmp/ca -Dca.standalone.token-file=/state/tokens.txt" ;;
    # the control plane's own ports leave 15021/15014 (and 15020) to the service beside them
    ca-for-control-plane) echo "-Dca.mode=standalone -Dca.standalone.dir=/cp/ca -Dca.standalone.token-file=/cp/tokens.txt -Dquarkus.http.port=15821 -Dquarkus.management.port=15814" ;;
    xds) echo "-Dxds.source=directory -Dxds.directory=/samples -Dxds.waypoint.enabled=false $cp_client_tls" ;;
    xds-for-control-plane) echo "-Dxds.source=directory -Dxds.directory=/samples -Dxds.waypoint.enabled=false $cp_client_tls -Dquarkus.http.port=15921 -Dquarkus.management.port=15914" ;;
    ztunnel) echo "-Dztunnel.node-name=standalone -Dztunnel.node-ip=127.0.0.1 -Dztunnel.local-config=/state/mesh.yaml -Dztunnel.identity.source=local -Dztunnel.identity.ca-dir=/tmp/ca" ;;
    waypoint) echo "-Dwaypoint.gateway=default/waypoint -Dwaypoint.xds-address=127.0.0.1:15010 -Dwaypoint.xds-server-name=xds.istio-system.svc -Dwaypoint.identity.root-cert-file=/cp/ca/root-cert.pem -Dwaypoint.identity.token-file=/cp/waypoint.token -Dwaypoint.identity.source=local -Dwaypoint.identity.ca-dir=/tmp/ca -Dwaypoint.drain-minimum=0s -Dwaypoint.drain-timeout=1s" ;;
    cni-agent) echo "-Dcni.node-name=standalone -Dcni.source=directory -Dcni.directory=/samples -Dcni.zds-socket=/tmp/zds/ztunnel.sock -Dcni.plugin-socket=/tmp/cni.sock" ;;  # the agent makes /tmp/zds 0755: it refuses a world-writable directory (/tmp) for the ZDS socket
  esac
}

standalone_start() { # service image name statedir [java_opts [podman options...]]
  local service="$1" image="$2" name="$3" state="$4" java_opts="${5:-}" net=(--network none) env=() cp=()
  shift 4; [ $# -gt 0 ] && shift
  mkdir -p "$state"
  chmod 0777 "$state"   # the non-root images write their cache there
  printf 'standalone-token default standalone\n' >"$state/tokens.txt"
  : >"$state/mesh.yaml"
  case "$service" in
    xds|waypoint|*-for-control-plane)
      [ -n "${control_plane:-}" ] || { echo "standalone: $service needs control_plane_start first" >&2; return 1; }
      net=(--network "container:$control_plane") cp=(-v "$control_plane_dir:/cp:rw") ;;
  esac
  [ "$service" = ca-for-control-plane ] && net=(--network none)
  [ -n "$java_opts" ] && env=(-e "JAVA_OPTS=$java_opts")
  # shellcheck disable=SC2046
  podman run -d --name "$name" --label dev.ambient.images=standalone "${net[@]}" "${env[@]}" \
    $(pod_opts "${service%-for-control-plane}") "$@" -v "$state:/state:rw" "${cp[@]}" -v "$samples_dir:/samples:ro" \
    "$image" $(standalone_args "$service") >/dev/null
  container_pid="$(podman inspect -f '{{.State.Pid}}' "$name")"
}

control_plane_start() { # name dir ca|ca+xds (images: $prefix/ca:$tag, $prefix/xds:$tag, prefix defaults to ambient-mesh)
  local name="$1" dir="$2" what="$3" image_prefix="${prefix:-ambient-mesh}"
  control_plane_dir="$dir"
  mkdir -p "$dir/ca"
  chmod 0777 "$dir" "$dir/ca"   # the ca (user 1337) writes its root there
  # svc-ca's standalone token list: token namespace serviceaccount; xds may get DNS-name certificates
  printf 'xds-token istio-system xds\nwaypoint-token default waypoint\n' >"$dir/tokens.txt"
  echo xds-token >"$dir/xds.token"
  echo waypoint-token >"$dir/waypoint.token"
  control_plane="$name-ca"
  standalone_start ca-for-control-plane "$image_prefix/ca:${tag:-0.1.0}" "$name-ca" "$dir/state-ca"
  standalone_wait "$name-ca" 15821 || { echo "standalone: $name-ca (control plane) did not get ready" >&2; return 1; }
  if [ "$what" = ca+xds ]; then
    standalone_start xds-for-control-plane "$image_prefix/xds:${tag:-0.1.0}" "$name-xds" "$dir/state-xds"
    standalone_wait "$name-xds" 15921 || { echo "standalone: $name-xds (control plane) did not get ready" >&2; return 1; }
  fi
}

standalone_wait() { # container port: 0 once ready (up to 120 s); else its log's tail on stderr, 1
  local deadline=$(( $(date +%s) + 120 ))
  while [ "$(date +%s)" -lt $deadline ]; do
    standalone_ready "$1" "$2" && return 0
    [ "$(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ] || break
    sleep 0.2
  done
  podman logs "$1" 2>&1 | tail -30 >&2
  return 1
}

control_plane_stop() { # name
  standalone_stop "$1-xds"
  standalone_stop "$1-ca"
  unset control_plane
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
