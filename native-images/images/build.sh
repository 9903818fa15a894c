#!/usr/bin/env bash
# The five services' container images, built here with podman from Debian's packages, a jlinked
# Java runtime and our jars; native-images/README.md ("Container images").
#
#   native-images/images/build.sh [service ...]      (as root; default: all five)
#
# Run by `./mvnw -B package -DskipTests -Dimages`, which first packages every service's app in
# aot-jar form into svc-*/target/image-build/quarkus-app. For each service it builds
# ambient-mesh/<service>:<tag> (the names k8s/kustomization.yaml's `images:` gives) in two steps:
# the app image, then a training run of it in a container with the pods' JAVA_OPTS whose AOT
# cache becomes the last layer. Then it writes native-images/target/images/<service>.oci.tar
# (`podman load -i`, or `skopeo copy oci-archive:...` to a registry) and prints each image's size.
#
# Environment: JAVA_HOME (Temurin 25: its jlink makes the runtime), IMAGE_TAG (0.1.0),
# IMAGE_PREFIX (ambient-mesh), IMAGES_OUT (native-images/target/images). Base images are kept in
# podman's storage under a name made of a hash of their inputs (the Debian package versions, the
# JDK build, the module list, these scripts), so a second build on one machine reuses them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
tag="${IMAGE_TAG:-0.1.0}"
prefix="${IMAGE_PREFIX:-ambient-mesh}"
out="$(mkdir -p "${IMAGES_OUT:-$here/../target/images}" && cd "${IMAGES_OUT:-$here/../target/images}" && pwd)"
work="$out/work"
all=(ca xds ztunnel cni-agent waypoint)   # xds before waypoint: the waypoint trains against it
services=("$@")
[ ${#services[@]} -gt 0 ] || services=("${all[@]}")

# What the services use of the JDK (jdeps over every jar of the five apps, less what only build
# tools and optional integrations reference: vertx-codegen's annotation processors want
# java.compiler/jdk.compiler, Micrometer's and Jackson's optional JDBC and java.beans support
# want java.sql/java.desktop). Each image is trained and started in the build, so a module
# missing at run time fails the build.
jdk_modules=java.base,java.logging,java.management,jdk.management,java.naming,jdk.unsupported
# The CNI plugin runs on the node with a runtime of its own, which the agent's installer copies
# there from /opt/ambient/cni/ambient-cni.d/jre: in the cni-agent's image that is the one runtime
# (/opt/java links to it), one copy instead of two.
cni_jre=/opt/ambient/cni/ambient-cni.d/jre
# The pods' JVM options (every JAVA_OPTS in k8s/ is this; ImagesIT checks the images say the same).
java_opts="-XX:+UseSerialGC -XX:MaxRAMPercentage=40 -XX:+UseCompactObjectHeaders -XX:TrimNativeHeapInterval=2000 --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -XX:AOTCache=/deployments/app.aot"
train_opts="${java_opts/-XX:AOTCache=\/deployments\/app.aot/-XX:AOTCacheOutput=/state/app.aot}"

say() { printf '[images] %s\n' "$*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

module_of() { echo "svc-$1"; }
user_of() { case "$1" in ztunnel|cni-agent) echo 0 ;; *) echo 1337 ;; esac; }
base_of() { case "$1" in cni-agent) echo net ;; *) echo jvm ;; esac; }

preflight() {
  [ "$(id -u)" = 0 ] || die "run as root (podman, network namespaces)"
  command -v podman >/dev/null || die "podman missing: run native-images/images/podman-setup.sh (as root)"
  for c in dpkg-deb apt-get curl nsenter tar sha256sum; do command -v $c >/dev/null || die "$c missing"; done
  [ -x "$JAVA_HOME/bin/jlink" ] || die "no jlink at $JAVA_HOME (set JAVA_HOME to Temurin 25)"
  for s in "${services[@]}"; do
    case " ${all[*]} " in *" $s "*) ;; *) die "unknown service $s (${all[*]})" ;; esac
    local app="$repo/$(module_of "$s")/target/image-build/quarkus-app/quarkus-run.jar"
    [ -f "$app" ] || die "$app missing: ./mvnw -B package -DskipTests -Dimages builds it"
  done
  if [[ " ${services[*]} " == *" cni-agent "* ]]; then
    [ -f "$repo/svc-cni-agent/target/ambient-cni.d/ambient-cni.jar" ] || die "svc-cni-agent's CNI plugin jar missing: build svc-cni-agent"
  fi
  [[ " ${services[*]} " == *" waypoint "* ]] && [[ " ${services[*]} " != *" xds "* ]] \
    && ! podman image exists "$prefix/xds:$tag" && die "the waypoint trains against the xds image: build xds too"
  grep -qs '^[[:space:]]*default_ulimits[[:space:]]*=[[:space:]]*\[\]' /etc/containers/containers.conf \
    || say "warning: /etc/containers/containers.conf lacks default_ulimits = [] (podman-setup.sh sets it); containers may fail to start"
  return 0
}

# --- base images: Debian root + jlinked runtime + launcher ---------------------------------------
jre() { # modules dir
  rm -rf "$2"
  "$JAVA_HOME/bin/jlink" --add-modules "$1" --strip-debug --no-man-pages --no-header-files \
    --compress=zip-6 --output "$2"
}

base_image() { # kind: jvm | net; prints the image name
  local kind="$1" sets=(jvm) root key name
  [ "$kind" = net ] && sets=(jvm net)
  "$here/rootfs.sh" "$work/base" "${sets[@]}" >"$out/packages-$kind.txt"
  root="$(cat "$work/base/root-$(IFS=-; echo "${sets[*]}").path")"
  mkdir -p "$root/opt" "$root/usr/local/bin"
  if [ "$kind" = net ]; then
    mkdir -p "$root$(dirname "$cni_jre")"
    cp -a "$work/jre" "$root$cni_jre"
    ln -s "${cni_jre#/opt/}" "$root/opt/java"
  else
    cp -a "$work/jre" "$root/opt/java"
  fi
  install -m 0755 "$here/run-java" "$root/usr/local/bin/run-java"
  key="$( { cat "$out/packages-$kind.txt" "$JAVA_HOME/release" "$here/packages.conf" "$here/rootfs.sh" "$here/run-java"
            echo "$kind $cni_jre $jdk_modules $java_opts"; } | sha256sum | cut -c1-16)"
  name="localhost/$prefix-base/$kind:$key"
  if ! podman image exists "$name"; then
    # Every file owned by root with one fixed time: the same inputs give the same layer.
    tar --sort=name --mtime=@0 --clamp-mtime --owner=0 --group=0 --numeric-owner \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$root" -c . \
      | podman import --change "ENV JAVA_HOME=/opt/java" \
          --change "ENV PATH=/usr/local/bin:/usr/bin:/usr/sbin:/opt/java/bin" \
          --change "ENV JAVA_OPTS=\"$java_opts\"" --change "ENV LANG=C.UTF-8" \
          -q - "$name" >/dev/null
    # Older bases of this kind (other inputs) go, unless an image still uses them.
    podman images --format '{{.Repository}}:{{.Tag}}' | grep "^localhost/$prefix-base/$kind:" | grep -v ":$key\$" \
      | while read -r old; do podman rmi "$old" >/dev/null 2>&1 || true; done
    say >&2 "base $name: Debian bookworm ($(wc -l <"$out/packages-$kind.txt") packages) + Java runtime ($jdk_modules)"
  fi
  echo "$name"
}

# --- one service ---------------------------------------------------------------------------------
stage() { # service: the build context, libraries and our code in separate layers
  local s="$1" app ctx
  app="$repo/$(module_of "$s")/target/image-build/quarkus-app"
  ctx="$work/ctx-$s"
  rm -rf "$ctx"; mkdir -p "$ctx/libraries/lib/main" "$ctx/ours/lib/main" "$ctx/extra"
  cp -a "$app/lib/boot" "$ctx/libraries/lib/"
  for j in "$app"/lib/main/*.jar; do
    case "$(basename "$j")" in
      dev.ambient.*) cp -a "$j" "$ctx/ours/lib/main/" ;;
      *) cp -a "$j" "$ctx/libraries/lib/main/" ;;
    esac
  done
  cp -a "$app/app" "$app/quarkus" "$app/quarkus-run.jar" "$ctx/ours/"
  if [ "$s" = cni-agent ]; then
    # The plugin and what the installer copies to the node (cni.install.plugin-source).
    local cni="$ctx/extra/opt/ambient/cni"
    mkdir -p "$cni/ambient-cni.d"
    install -m 0755 "$repo/svc-cni-agent/src/main/cni/ambient-cni" "$cni/ambient-cni"
    cp "$repo/svc-cni-agent/target/ambient-cni.d/ambient-cni.jar" "$cni/ambient-cni.d/"
  fi
  echo "$ctx"
}

containers=()
cleanup() { local c; for c in "${containers[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

# shellcheck source=standalone.sh
. "$here/standalone.sh"

train() { # service untrained-image context: the AOT cache of one run, into context/app.aot
  local s="$1" image="$2" ctx="$3" name="ambient-images-train-$1-$$" state="$work/train-$1" t0
  rm -rf "$state"
  containers+=("$name")
  # xds and the waypoint run beside a control plane of their own (standalone.sh): its ca, and
  # the waypoint's xds (already built: the loop builds ca, then xds, then the others).
  case "$s" in
    xds) containers+=("$name-cp-ca"); control_plane_start "$name-cp" "$state-cp" ca || die "no control plane to train $s beside" ;;
    waypoint) containers+=("$name-cp-ca" "$name-cp-xds"); control_plane_start "$name-cp" "$state-cp" ca+xds || die "no control plane to train $s beside" ;;
  esac
  standalone_start "$s" "$image" "$name" "$state" "$train_opts"
  wait_ready "$name" "$s"
  standalone_traffic "$name" "$s"
  sleep 1
  podman stop -t 120 "$name" >/dev/null
  podman logs "$name" >"$work/train-$s.log" 2>&1 || true
  podman rm -f "$name" >/dev/null 2>&1 || true
  [ -n "${control_plane:-}" ] && control_plane_stop "$name-cp"
  [ -s "$state/app.aot" ] || { tail -20 "$work/train-$s.log" >&2; die "the training run of $s wrote no AOT cache ($work/train-$s.log)"; }
  mv "$state/app.aot" "$ctx/app.aot"
  rm -rf "$state" "$state-cp"
}

wait_ready() { # container what [port]
  standalone_wait "$1" "${3:-15021}" || die "$2 did not get ready in its container"
}

train_cni_plugin() { # untrained image, context: the plugin's own AOT cache, made by its own runtime
  local image="$1" ctx="$2" state="$work/train-cni-plugin" d=/opt/ambient/cni/ambient-cni.d
  rm -rf "$state"; mkdir -p "$state"; chmod 0777 "$state"
  # As svc-cni-agent's build trains it: an ADD for a mesh pod with no agent (exit 1 expected),
  # with the launcher's flags.
  printf '{"cniVersion":"1.0.0","name":"k8s","type":"ambient-cni","agent_socket":"/tmp/no-agent.sock","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}}' \
    | podman run --rm -i --network none --read-only --tmpfs /tmp --cap-drop ALL -v "$state:/state:rw" \
        -e CNI_COMMAND=ADD -e CNI_NETNS=/var/run/netns/training -e "CNI_ARGS=K8S_POD_NAMESPACE=training;K8S_POD_NAME=training" \
        --entrypoint "$d/jre/bin/java" "$image" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xss512k \
        -Xlog:disable -Xlog:all=error:stderr -XX:AOTCacheOutput=/state/ambient-cni.aot \
        -cp "$d/ambient-cni.jar" dev.ambient.cni.plugin.CniPlugin >"$work/train-cni-plugin.log" 2>&1 || true
  [ -s "$state/ambient-cni.aot" ] || { cat "$work/train-cni-plugin.log" >&2; die "the CNI plugin's training run wrote no AOT cache"; }
  mkdir -p "$ctx/aot-extra/opt/ambient/cni/ambient-cni.d"
  mv "$state/ambient-cni.aot" "$ctx/aot-extra/opt/ambient/cni/ambient-cni.d/"
  rm -rf "$state"
}

build_service() { # service
  local s="$1" base ctx untrained final epoch previous
  base="$(base_image "$(base_of "$s")")"
  ctx="$(stage "$s")"
  untrained="localhost/$prefix-build/$s:untrained"
  final="$prefix/$s:$tag"
  epoch="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)"
  podman build -q --network none --timestamp "$epoch" -f "$here/Containerfile" --build-arg "BASE=$base" \
    --build-arg "USER=$(user_of "$s")" --build-arg "SERVICE=$s" -t "$untrained" "$ctx" >/dev/null
  say "$s: training run for the AOT cache"
  train "$s" "$untrained" "$ctx"
  mkdir -p "$ctx/aot-extra"
  [ "$s" = cni-agent ] && train_cni_plugin "$untrained" "$ctx"
  # The cache is the last layer; the plugin's cache, if any, with it.
  { cat "$here/Containerfile.aot"; echo "COPY aot-extra/ /"; } >"$ctx/Containerfile.aot"
  previous="$(podman image inspect -f '{{.Id}}' "$final" 2>/dev/null || true)"
  podman build -q --network none --timestamp "$epoch" -f "$ctx/Containerfile.aot" --build-arg "APP=$untrained" \
    -t "$final" "$ctx" >/dev/null
  podman rmi "$untrained" >/dev/null 2>&1 || true
  # The image this one replaces, untagged now: ours to remove (unless a container still uses it).
  [ -n "$previous" ] && [ "$previous" != "$(podman image inspect -f '{{.Id}}' "$final")" ] \
    && { podman rmi "$previous" >/dev/null 2>&1 || true; }
  rm -f "$out/$s.oci.tar"
  podman save -q --format oci-archive -o "$out/$s.oci.tar" "$final"
  say "$s: $final $(size_of "$final") ($out/$s.oci.tar $(du -m "$out/$s.oci.tar" | cut -f1) MB)"
}

size_of() { podman image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1000000}'; }

mkdir -p "$out" "$work"
preflight
t0=$(date +%s)
jre "$jdk_modules" "$work/jre"
for s in "${services[@]}"; do build_service "$s"; done
rm -rf "$work"/ctx-* "$work"/train-*
say "built ${services[*]} in $(( $(date +%s) - t0 )) s; archives in $out"
printf '%-28s %10s %12s\n' image size layers
for s in "${services[@]}"; do
  printf '%-28s %10s %12s\n' "$prefix/$s:$tag" "$(size_of "$prefix/$s:$tag")" \
    "$(podman image inspect -f '{{len .RootFS.Layers}}' "$prefix/$s:$tag")"
done
