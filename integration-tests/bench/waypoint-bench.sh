#!/usr/bin/env bash
# Waypoint benchmark: request rate and latency of three paths through the mesh, same machine, same
# run, with ratios:
#   L4      client -> ztunnel node-a -> ztunnel node-b -> nginx (server)
#   nginx   client -> ztunnel node-a -> ztunnel node-b -> nginx reverse proxy -> nginx (server)
#           (Debian's nginx as a plain L7 proxy: the yardstick for one L7 hop)
#   waypoint client -> ztunnel node-a -> waypoint -> ztunnel node-b -> nginx (server)
# and the waypoint's CPU per request, added p50 latency against nginx's, and RSS at 1,000 rps.
# svc-xds (directory source) streams the mesh written below as Kubernetes YAML to the two
# ztunnels and the waypoint; certificates come from a local root shared by all three. Everything
# runs in a private network namespace on loopback addresses, removed on exit with every process.
#
#   sudo integration-tests/bench/waypoint-bench.sh
#
# Settings (environment): WPBENCH_DURATION (10 s per timed run), WPBENCH_CONNS (16 connections for
# the rate runs), WPBENCH_XMX (256m per JVM), WPBENCH_NS (wpbench), WPBENCH_JAVA_HOME,
# WPBENCH_KEEP=1 (keep the temp dir with the logs), WPBENCH_WP_JVM_OPTS (the waypoint's JVM
# flags, after the common ones; default below), WPBENCH_WP_ENV (its environment; default
# MALLOC_ARENA_MAX=2), WPBENCH_ROUNDS (3), WPBENCH_WARMUP (5 s), WPBENCH_PACED (15 s).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
java_home="${WPBENCH_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
NS="${WPBENCH_NS:-wpbench}"
DUR="${WPBENCH_DURATION:-10}"
CONNS="${WPBENCH_CONNS:-16}"
XMX="${WPBENCH_XMX:-256m}"
ROUNDS="${WPBENCH_ROUNDS:-3}"
WARMUP="${WPBENCH_WARMUP:-5}"
PACED="${WPBENCH_PACED:-15}"

CLIENT=127.0.10.1      # bench-client pod, node-a: its connections to 127.0.50.0/24 are captured
SERVER=127.0.20.1      # bench-server pod, node-b: nginx :8080
PROXY=127.0.40.1       # bench-proxy pod, node-b: nginx reverse proxy :8081 -> SERVER:8080
WAYPOINT=127.0.30.1    # waypoint-0 pod (no ztunnel on its node): HBONE :15008
VIP_L4=127.0.50.1      # service server-l4 -> bench-server, no waypoint
VIP_WP=127.0.50.2      # service server-wp -> bench-server, istio.io/use-waypoint: waypoint
VIP_NGINX=127.0.50.3   # service proxy -> bench-proxy
XDS=127.0.0.5; NODE_A=127.0.0.2; NODE_B=127.0.0.3; WP_ADMIN=127.0.0.6
MARK=1337

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'waypoint-bench: %s\n' "$*" >&2; exit 1; }
nx() { ip netns exec "$NS" "$@"; }
calc() { awk "BEGIN { v = $1; printf \"%${2:-.1f}\", v }" 2>/dev/null || echo nan; }

[ "$(id -u)" = 0 ] || die "needs root (network namespace, iptables)"
missing=()
for tool in ip:iproute2 iptables:iptables wrk:wrk nginx:nginx curl:curl openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x "$java_home/bin/java" ] || die "no Java 25 at $java_home (set WPBENCH_JAVA_HOME)"
for m in svc-xds svc-ztunnel svc-waypoint; do
  if [ ! -f "$repo/$m/target/quarkus-app/quarkus-run.jar" ]; then
    say "building $m (jar missing)"
    (cd "$repo" && JAVA_HOME="$java_home" ./mvnw -B -q -o -pl "$m" -am package -DskipTests) || die "build of $m failed"
  fi
done
if ip netns list | awk '{ print $1 }' | grep -qxF "$NS"; then
  [ -z "$(ip netns pids "$NS" 2>/dev/null)" ] || die "network namespace $NS exists with processes in it (WPBENCH_NS)"
  ip netns del "$NS"
fi

work="$(mktemp -d /tmp/wpbench.XXXXXX)"
pids=()
cleanup() {
  set +e
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  done
  ip netns del "$NS" 2>/dev/null
  if [ "${WPBENCH_KEEP:-0}" = 1 ]; then echo "kept logs in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
start_bg() { local name="$1"; shift; ip netns exec "$NS" "$@" >"$work/$name.log" 2>&1 & pids+=($!); eval "pid_${name//-/_}=$!"; }
wait_ready() { # name pid url
  for _ in $(seq 1 240); do
    nx curl -fsS -o /dev/null "$3" 2>/dev/null && { say "$1 ready ($3)"; return 0; }
    kill -0 "$2" 2>/dev/null || { tail -30 "$work/$1.log" >&2; die "$1 exited"; }
    sleep 0.25
  done
  tail -30 "$work/$1.log" >&2; die "$1 not ready after 60 s"
}

say "network namespace $NS: lo up, source-hint route, capture of $CLIENT -> 127.0.50.0/24"
ip netns add "$NS"
nx ip link set lo up
nx ip route add local 127.0.50.0/24 dev lo src "$CLIENT" table local
nx iptables -w -t nat -A OUTPUT -m mark --mark "$MARK" -j RETURN
nx iptables -w -t nat -A OUTPUT -p tcp -s "$CLIENT" -d 127.0.50.0/24 -j REDIRECT --to-ports 15001

# ---------------------------------------------------------------------------------------------
# The mesh, as Kubernetes YAML read by svc-xds (pods carry the status an API server would fill in)
mkdir -p "$work/mesh" "$work/ca" "$work/www" "$work/nginx"
pod() { # name, node, ip, sa, labels, ports
cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: bench, uid: 00000000-0000-4000-8000-$(printf '%012d' "$RANDOM"), labels: {$5}}
spec:
  nodeName: $2
  serviceAccountName: $4
  containers: [{name: main, image: bench$6}]
status: {phase: Running, podIP: $3, conditions: [{type: Ready, status: "True"}]}
EOF
}
{
cat <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: bench, labels: {istio.io/dataplane-mode: ambient}}
EOF
pod bench-client node-a "$CLIENT" bench-client "app: client" ""
pod bench-server node-b "$SERVER" bench-server "app: server" ", ports: [{name: http, containerPort: 8080}]"
pod bench-proxy node-b "$PROXY" bench-proxy "app: proxy" ", ports: [{name: http, containerPort: 8081}]"
pod waypoint-0 node-w "$WAYPOINT" waypoint "gateway.networking.k8s.io/gateway-name: waypoint, istio.io/dataplane-mode: none" ""
cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: server-l4, namespace: bench}
spec: {clusterIP: $VIP_L4, selector: {app: server}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: server-wp, namespace: bench, labels: {istio.io/use-waypoint: waypoint}}
spec: {clusterIP: $VIP_WP, selector: {app: server}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: proxy, namespace: bench}
spec: {clusterIP: $VIP_NGINX, selector: {app: proxy}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: bench, labels: {istio.io/waypoint-for: service}}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Service
metadata: {name: waypoint, namespace: bench, labels: {gateway.networking.k8s.io/gateway-name: waypoint}}
spec: {clusterIP: 127.0.50.20, selector: {gateway.networking.k8s.io/gateway-name: waypoint}, ports: [{name: mesh, port: 15008, targetPort: 15008}]}
---
# One L7 hop's worth of work: a route match and a request header change.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: server-wp, namespace: bench}
spec:
  parentRefs: [{group: "", kind: Service, name: server-wp, port: 80}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-bench, value: waypoint}]}
    backendRefs: [{name: server-wp, port: 80}]
EOF
} >"$work/mesh/bench.yaml"

head -c 99 /dev/zero | tr '\0' 'z' >"$work/www/100b.txt"; echo >>"$work/www/100b.txt"
cat >"$work/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type text/plain;
  tcp_nodelay on;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream server { server $SERVER:8080; keepalive 64; }
  server { listen $SERVER:8080; root $work/www; }
  server {
    listen $PROXY:8081;
    location / { proxy_pass http://server; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
start_bg nginx nginx -p "$work/nginx" -c "$work/nginx.conf" -e "$work/nginx/error.log"

for m in svc-xds svc-ztunnel svc-waypoint; do cp -a "$repo/$m/target/quarkus-app" "$work/$m"; done
jvm=("$java_home/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow "-Xmx$XMX")
hosts() { echo "-Dquarkus.http.host=$1 -Dquarkus.management.host=$1 -Dquarkus.grpc.server.host=$1"; }

# The control plane speaks TLS 1.3 only, every client with a token: the mesh root (which the
# ztunnels and the waypoint also issue workload certificates from) and xds's serving certificate
# are made here with openssl, the tokens are files (xds.auth.mode=file), as in the mesh in a box.
XDS_NAME=xds.istio-system.svc
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca/ca-key.pem"
openssl req -x509 -new -key "$work/ca/ca-key.pem" -subj "/O=cluster.local/CN=bench root" -days 2 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$work/ca/root-cert.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$work/xds-key.pem"
openssl req -new -key "$work/xds-key.pem" -subj "/CN=$XDS_NAME" -out "$work/xds.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' "$XDS_NAME" >"$work/xds.ext"
openssl x509 -req -in "$work/xds.csr" -CA "$work/ca/root-cert.pem" -CAkey "$work/ca/ca-key.pem" -CAcreateserial \
  -days 2 -extfile "$work/xds.ext" -out "$work/xds-cert.pem" 2>/dev/null
printf '# token namespace serviceaccount node\nztunnel-node-a istio-system ztunnel node-a\nztunnel-node-b istio-system ztunnel node-b\nwaypoint-0 bench waypoint node-w\n' >"$work/tokens.txt"
for t in ztunnel-node-a ztunnel-node-b waypoint-0; do echo "$t" >"$work/$t.token"; done
chmod 600 "$work"/*.token "$work/tokens.txt"
tls_client() { # prefix token
  echo "-D$1.xds-server-name=$XDS_NAME -D$1.identity.root-cert-file=$work/ca/root-cert.pem -D$1.identity.token-file=$work/$2.token"
}

say "svc-xds on $XDS:15010 (TLS 1.3 as $XDS_NAME), reading $work/mesh"
start_bg xds "${jvm[@]}" $(hosts $XDS) -Dxds.source=directory -Dxds.directory="$work/mesh" \
  -Dxds.waypoint.enabled=false -Dxds.tls.source=files -Dxds.tls.cert-file="$work/xds-cert.pem" \
  -Dxds.tls.key-file="$work/xds-key.pem" -Dxds.tls.root-cert-file="$work/ca/root-cert.pem" \
  -Dxds.auth.mode=file -Dxds.auth.token-file="$work/tokens.txt" -jar "$work/svc-xds/quarkus-run.jar"
wait_ready xds "$pid_xds" "http://$XDS:15021/healthz/ready"

ztunnel() { # node ip capture-port
  start_bg "ztunnel-$1" "${jvm[@]}" $(hosts "$2") -Dztunnel.node-name="$1" -Dztunnel.node-ip="$2" \
    -Dztunnel.xds-address="$XDS:15010" -Dztunnel.identity.ca-dir="$work/ca" $(tls_client ztunnel "ztunnel-$1") \
    -Dztunnel.ports.outbound-capture="$3" -Dztunnel.ports.inbound-plaintext=0 -Dztunnel.ports.socks5=0 \
    -Dztunnel.ports.admin=0 -Dztunnel.dataplane.socket-mark="$MARK" \
    '-Dquarkus.log.category."dev.ambient.ztunnel.access".level=WARN' -jar "$work/svc-ztunnel/quarkus-run.jar"
}
say "ztunnels node-a ($NODE_A, capture 15001) and node-b ($NODE_B); waypoint on $WAYPOINT:15008"
ztunnel node-a "$NODE_A" 15001
wait_ready ztunnel-node-a "$pid_ztunnel_node_a" "http://$NODE_A:15021/healthz/ready"
ztunnel node-b "$NODE_B" 0
# The waypoint's JVM, sized for a proxy (waypoint-profile.txt): a heap of its live set (~30 MB
# here) plus a small young generation, Serial GC, compact object headers, freed C-heap (the JIT's
# arenas) given back to the OS every 2 s, and two glibc malloc arenas instead of one per thread.
WP_JVM_OPTS="${WPBENCH_WP_JVM_OPTS--Xmx40m -Xmn8m -XX:+UseSerialGC -XX:+UseCompactObjectHeaders -XX:TrimNativeHeapInterval=2000}"
WP_ENV="${WPBENCH_WP_ENV-MALLOC_ARENA_MAX=2}"
read -r -a wp_extra <<<"$WP_JVM_OPTS"
read -r -a wp_env <<<"$WP_ENV"
start_bg waypoint env "${wp_env[@]}" "${jvm[@]}" "${wp_extra[@]}" $(hosts $WP_ADMIN) -Dwaypoint.gateway=bench/waypoint -Dwaypoint.pod-name=waypoint-0 \
  -Dwaypoint.xds-address="$XDS:15010" -Dwaypoint.identity.ca-dir="$work/ca" $(tls_client waypoint waypoint-0) \
  -Dwaypoint.listen.address="$WAYPOINT" '-Dquarkus.log.category."dev.ambient.waypoint.access".level=WARN' \
  -jar "$work/svc-waypoint/quarkus-run.jar"
wait_ready ztunnel-node-b "$pid_ztunnel_node_b" "http://$NODE_B:15021/healthz/ready"
wait_ready waypoint "$pid_waypoint" "http://$WP_ADMIN:15021/healthz/ready"
WP=$pid_waypoint
[ "$(cat /proc/$WP/comm)" = java ] || die "pid $WP is not the waypoint JVM"

say "checking the three paths"
for vip in $VIP_L4 $VIP_NGINX $VIP_WP; do
  ok=0
  for _ in $(seq 1 50); do
    b=$(nx curl -fsS --max-time 5 "http://$vip/100b.txt" 2>/dev/null | wc -c || true)
    [ "$b" = 100 ] && { ok=1; break; }
    sleep 0.2
  done
  [ $ok = 1 ] || die "request to $vip failed; logs in $work (WPBENCH_KEEP=1 keeps them)"
done
seen=$(nx curl -fsS "http://$WP_ADMIN:15020/metrics" | grep -c '^istio_requests_total{.*reporter="waypoint"' || true)
[ "$seen" -gt 0 ] || die "the waypoint reported no request: the server-wp path did not go through it"
echo "   L4, nginx and waypoint paths answer 100 bytes; the waypoint counts its requests"

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
CLK_TCK="$(getconf CLK_TCK)"
ms() { # wrk latency value ("1.23ms", "456.00us", "1.2s") -> ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
run_wrk() { # label url conns -> sets rps p50 p99 reqs
  local out
  out=$(nx wrk -t1 -c"$3" -d"${DUR}s" --latency "$2")
  echo "$out" >"$work/wrk-$1-c$3.txt"
  rps=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
  reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
  p50=$(ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
  p99=$(ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
  [ -z "$errs" ] || echo "   $1: $errs" >&2
}

# Warm up the JITs on every path (the waypoint's C2 needs more than a few seconds on a busy machine).
for vip in $VIP_L4 $VIP_NGINX $VIP_WP; do nx wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://$vip/100b.txt" >/dev/null; done
nx wrk -t1 -c1 -d"${WARMUP}s" "http://$VIP_WP/100b.txt" >/dev/null

# Rounds: each path's rate run then its latency run, the paths' order rotated from round to round,
# so a neighbour's build hits all three alike. Ratios are taken within a round, then the median.
declare -A RPS P50 P99 LAT50 LAT99
wp_ticks=0; wp_reqs=0
paths=(l4:$VIP_L4 nginx:$VIP_NGINX waypoint:$VIP_WP)
r_rate=(); r_added=(); r_cpu=()
for ((round = 1; round <= ROUNDS; round++)); do
  say "round $round of $ROUNDS: each path $CONNS connections ${DUR}s (rate), then 1 connection ${DUR}s (latency)"
  for ((k = 0; k < 3; k++)); do
    path=${paths[$(( (k + round - 1) % 3 ))]}
    name=${path%%:*}; vip=${path#*:}
    t0=$(cpu_ticks "$WP")
    run_wrk "$name" "http://$vip/100b.txt" "$CONNS"
    t1=$(cpu_ticks "$WP")
    RPS[$name,$round]=$rps; P50[$name,$round]=$p50; P99[$name,$round]=$p99
    if [ "$name" = waypoint ]; then
      wp_ticks=$((wp_ticks + t1 - t0)); wp_reqs=$((wp_reqs + reqs))
      r_cpu+=("$(calc "($t1 - $t0) * 1000000 / $CLK_TCK / $reqs" .0f)")
    fi
    run_wrk "$name" "http://$vip/100b.txt" 1
    LAT50[$name,$round]=$p50; LAT99[$name,$round]=$p99
    printf '   %-8s %9s req/s (p50 %s ms, p99 %s ms at %s conns); 1 conn: p50 %s ms, p99 %s ms\n' \
      "$name" "${RPS[$name,$round]}" "${P50[$name,$round]}" "${P99[$name,$round]}" "$CONNS" \
      "${LAT50[$name,$round]}" "${LAT99[$name,$round]}"
  done
  r_rate+=("$(calc "${RPS[waypoint,$round]} / ${RPS[nginx,$round]}" .2f)")
  a_wp=$(calc "${LAT50[waypoint,$round]} - ${LAT50[l4,$round]}" .3f)
  a_ng=$(calc "${LAT50[nginx,$round]} - ${LAT50[l4,$round]}" .3f)
  # nginx's hop can measure as nothing (or less) in a noisy round: 10 us is wrk's resolution here.
  r_added+=("$(calc "$a_wp / (($a_ng > 0.010) ? $a_ng : 0.010)" .2f)")
  echo "   round $round: req/s waypoint/nginx ${r_rate[-1]}x; added p50 waypoint ${a_wp} ms, nginx ${a_ng} ms: ${r_added[-1]}x;" \
    "waypoint CPU ${r_cpu[-1]} us/request"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

say "waypoint at about 1,000 req/s for ${PACED}s (13 connections, each waiting 10 ms between requests)"
cat >"$work/paced.lua" <<'LUA'
function delay() return 10 end
LUA
rss_before=$(calc "$(rss_kb "$WP") / 1024" .0f)
nx wrk -t1 -c13 -d"${PACED}s" -s "$work/paced.lua" "http://$VIP_WP/100b.txt" >"$work/wrk-paced.txt"
paced_rps=$(awk '/^Requests\/sec/ { print $2 }' "$work/wrk-paced.txt")
WP_RSS_MB=$(calc "$(rss_kb "$WP") / 1024" .0f)

verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }
med_of() { local name=$1 arr=$2 i vals=(); for ((i = 1; i <= ROUNDS; i++)); do eval "vals+=(\"\${$arr[$name,$i]}\")"; done; median "${vals[@]}"; }
RATE=$(median "${r_rate[@]}")
# Added p50: each path's median 1-connection p50 over the rounds, minus L4's (less noisy than a
# round's difference); nginx's floored at wrk's 10 us resolution (it can measure as nothing).
ADDED_WP=$(calc "$(med_of waypoint LAT50) - $(med_of l4 LAT50)" .3f)
ADDED_NGINX=$(calc "$(med_of nginx LAT50) - $(med_of l4 LAT50)" .3f)
ADDED=$(calc "$ADDED_WP / (($ADDED_NGINX > 0.010) ? $ADDED_NGINX : 0.010)" .2f)
WP_CPU_US=$(calc "$wp_ticks * 1000000 / $CLK_TCK / $wp_reqs" .0f)

echo
say "results: medians of $ROUNDS interleaved rounds (same machine, same run; $(nproc) cores, shared: rely on the ratios)"
printf '   %-34s %12s %12s %12s\n' "" "L4" "nginx hop" "waypoint"
printf '   %-34s %12s %12s %12s\n' "req/s ($CONNS conns)" "$(med_of l4 RPS)" "$(med_of nginx RPS)" "$(med_of waypoint RPS)"
printf '   %-34s %12s %12s %12s\n' "p50 ms ($CONNS conns)" "$(med_of l4 P50)" "$(med_of nginx P50)" "$(med_of waypoint P50)"
printf '   %-34s %12s %12s %12s\n' "p50 / p99 ms (1 conn)" "$(med_of l4 LAT50)/$(med_of l4 LAT99)" \
  "$(med_of nginx LAT50)/$(med_of nginx LAT99)" "$(med_of waypoint LAT50)/$(med_of waypoint LAT99)"
echo "   per round: req/s waypoint/nginx ${r_rate[*]}; added p50 waypoint/nginx ${r_added[*]}; CPU us/request ${r_cpu[*]}"
printf '   %-44s %-10s %-18s %s\n' "req/s at $CONNS conns, waypoint/nginx:" "${RATE}x" "(goal >= 0.8x)" "$(verdict "$RATE >= 0.8")"
if awk "BEGIN { exit !($ADDED_NGINX > 0.010 && $ADDED_WP > 0) }"; then
  printf '   %-44s %-10s %-18s %s\n' "added p50 at 1 conn, waypoint/nginx:" "${ADDED}x" "(goal <= 2x)" "$(verdict "$ADDED <= 2")"
else # a hop that measures as nothing or less: the run was too noisy to judge this figure
  printf '   %-44s %-10s %-18s %s\n' "added p50 at 1 conn, waypoint/nginx:" "n/a" "(goal <= 2x)" "NOISE"
fi
echo "   (added p50: waypoint ${ADDED_WP} ms, nginx ${ADDED_NGINX} ms over L4's $(med_of l4 LAT50) ms)"
printf '   %-44s %-10s %-18s %s\n' "waypoint CPU per request:" "${WP_CPU_US} us" "(goal <= 100 us)" "$(verdict "$WP_CPU_US <= 100")"
printf '   %-44s %-10s %-18s %s\n' "waypoint RSS at ${paced_rps} req/s:" "${WP_RSS_MB} MB" "(goal < 100 MB)" "$(verdict "$WP_RSS_MB < 100")"
echo "   (RSS ${rss_before} MB before the paced run, after the rate runs; waypoint JVM: $WP_JVM_OPTS${WP_ENV:+; env $WP_ENV})"
