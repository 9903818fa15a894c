#!/usr/bin/env bash
# ztunnel benchmark: throughput, request rate, latency, CPU per request and memory of two ztunnels
# (node-a, node-b) carrying a captured client's traffic over HBONE, compared with the same traffic
# sent directly. Everything runs in a private network namespace on loopback addresses; the
# namespace, its iptables rules and every process started here are removed on exit.
#
#   sudo integration-tests/bench/ztunnel-bench.sh
#
# Settings (environment; see README.md beside this file): ZBENCH_DURATION (10 s per timed run),
# ZBENCH_IDLE_CONNS (1000), ZBENCH_WRK_THREADS (1), ZBENCH_XMX (unset: the pod's sizing), ZBENCH_THREADS (data-plane
# threads per ztunnel; default: the ztunnel's own), ZBENCH_ACCESS_LOG (INFO, or WARN),
# ZBENCH_JVM_OPTS (extra JVM flags for both ztunnels), ZBENCH_QUIET_WAIT (30 s), ZBENCH_NS
# (zbench), ZBENCH_JAVA_HOME, ZBENCH_KEEP=1 (keep the temp dir with the logs),
# ZBENCH_SETUP_ONLY=1 (set up, check the paths, then wait for Ctrl-C: for experiments),
# ZBENCH_ROUNDS (2 interleaved rounds of direct, ztunnel pair, Go pair), ZBENCH_AOT (1: the image's
# aot-jar and a trained AOT cache; 0: fast-jar without), ZBENCH_AOT_DIR (where the cache is kept),
# ZBENCH_JDK_JAVA_OPTIONS (the ztunnel's own JVM options; default: the DaemonSet's JDK_JAVA_OPTIONS).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# ZBENCH_AOT=1 (default): the image's packaging and cache, the aot-jar app (target/image-build) with
# an AOT cache trained as the image trains it; 0: the fast-jar app (target/quarkus-app), no cache.
AOT="${ZBENCH_AOT:-1}"
if [ "$AOT" = 1 ]; then
  jar="$repo/svc-ztunnel/target/image-build/quarkus-app/quarkus-run.jar"
else
  jar="$repo/svc-ztunnel/target/quarkus-app/quarkus-run.jar"
fi
aot_dir="${ZBENCH_AOT_DIR:-$repo/integration-tests/target/zbench-aot}"   # the trained cache, kept between runs
java_home="${ZBENCH_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
NS="${ZBENCH_NS:-zbench}"
DUR="${ZBENCH_DURATION:-10}"
IDLE_CONNS="${ZBENCH_IDLE_CONNS:-1000}"
WRK_THREADS="${ZBENCH_WRK_THREADS:-1}"
XMX="${ZBENCH_XMX:-}"
ACCESS_LOG="${ZBENCH_ACCESS_LOG:-INFO}"
ROUNDS="${ZBENCH_ROUNDS:-2}"

# Addresses, all inside the namespace. Routes with a source hint make unbound clients (wrk, curl)
# pick the right source: 127.0.20.0/24 is reached from the client workload 127.0.10.1 (captured,
# tunnelled); 127.0.21.0/24 from 127.0.11.1, which no rule captures (direct). nginx listens on both.
NODE_A=127.0.0.2
NODE_B=127.0.0.3
CLIENT=127.0.10.1          # workload on node-a: its connections to SERVER are captured
SERVER=127.0.20.1          # workload on node-b: nginx :8080, iperf3 :5201, idle holder :9000
DIRECT_CLIENT=127.0.11.1   # not a workload, never captured
DIRECT_SERVER=127.0.21.1   # same nginx, reached directly
MARK=1337                  # the ztunnels' default socket mark (ztunnel.dataplane.socket-mark)
GO_SERVER_NODE=127.0.0.5   # the Go pair's server peer (:15008); it dials targets from this address
GO_CLIENT=127.0.30.1       # the Go pair's client peer: :8080 and :5201 lead to SERVER's through it

python=/usr/bin/python3
[ -x "$python" ] || python="$(command -v python3)"

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'ztunnel-bench: %s\n' "$*" >&2; exit 1; }
nx() { ip netns exec "$NS" "$@"; }
calc() { awk "BEGIN { v = $1; printf \"%${2:-.1f}\", v }" 2>/dev/null || echo nan; }
isnum() { [[ "$1" =~ ^-?[0-9]+([.][0-9]+)?$ ]]; }

# ---------------------------------------------------------------------------------------------
# Prerequisites
[ "$(id -u)" = 0 ] || die "needs root (network namespace, iptables)"
missing=()
for tool in ip:iproute2 iptables:iptables iperf3:iperf3 wrk:wrk nginx:nginx curl:curl openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Go pair (gohbone/main.go) is built from Debian's Go and x/net, offline, in GOPATH mode.
GO_PACKAGES="golang-go golang-golang-x-net-dev"
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/golang.org/x/net/http2 ]; then
  say "the Go HBONE pair needs: apt-get install -y $GO_PACKAGES (installing)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $GO_PACKAGES >/dev/null \
    || die "could not install Go; run: apt-get install -y $GO_PACKAGES"
fi
[ -n "$python" ] || die "needs python3"
[ -x "$java_home/bin/java" ] || die "no Java 25 at $java_home (set ZBENCH_JAVA_HOME)"

if [ ! -f "$jar" ]; then
  say "building svc-ztunnel (jar missing)"
  for attempt in 1 2 3; do
    if (cd "$repo" && JAVA_HOME="$java_home" ./mvnw -B -q -o -pl shared-proto,svc-ztunnel -am package -DskipTests -Dimages -Dnative.sources.skip=true); then
      break
    fi
    [ $attempt = 3 ] && die "build failed three times"
    say "build failed (someone else may be building); retrying in 60 s"
    sleep 60
  done
fi

if ip netns list | awk '{ print $1 }' | grep -qxF "$NS"; then
  if [ -z "$(ip netns pids "$NS" 2>/dev/null)" ]; then
    ip netns del "$NS"   # left over from an interrupted run, nothing inside
  else
    die "network namespace $NS exists and has processes in it; choose another with ZBENCH_NS"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Cleanup: always, whatever happened
work="$(mktemp -d /tmp/zbench.XXXXXX)"
pids=()
cleanup() {
  set +e
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[$i]}"
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  ip netns del "$NS" 2>/dev/null
  if [ "${ZBENCH_KEEP:-0}" = 1 ]; then
    echo "kept logs and config in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

start_bg() { # name, command... (run inside the namespace; ip netns exec execs, so $! is the process)
  local name="$1"; shift
  ip netns exec "$NS" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_${name//-/_}=$!"
}

# ---------------------------------------------------------------------------------------------
# Network namespace, routes, capture rules
say "network namespace $NS: lo up, source-hint routes, capture rules (nothing on the host is touched)"
ip netns add "$NS"
nx ip link set lo up
nx ip route add local 127.0.20.0/24 dev lo src "$CLIENT" table local
nx ip route add local 127.0.21.0/24 dev lo src "$DIRECT_CLIENT" table local
nx iptables -w -t nat -A OUTPUT -m mark --mark "$MARK" -j RETURN
nx iptables -w -t nat -A OUTPUT -p tcp -s "$CLIENT" -d "$SERVER" -j REDIRECT --to-ports 15001
redirected() { nx iptables -w -t nat -L OUTPUT -n -v -x | awk '/REDIRECT/ { print $1; exit }'; }

# ---------------------------------------------------------------------------------------------
# Servers: nginx (100-byte file), iperf3, a connection holder
mkdir -p "$work/www" "$work/nginx/logs" "$work/ca"
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
  sendfile on;
  tcp_nodelay on;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen $SERVER:8080;
    listen $DIRECT_SERVER:8080;
    root $work/www;
  }
}
EOF
cp "$here/mesh.yaml" "$work/mesh.yaml"
# A private copy of the packaged app, so that a rebuild in the work tree during the run cannot
# pull the jars from under the JVMs.
cp -a "$(dirname "$jar")" "$work/quarkus-app"
jar_info="built $(date -u -r "$jar" +%Y-%m-%dT%H:%M:%SZ); sources now at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- shared-proto svc-ztunnel 2>/dev/null || echo ' with uncommitted changes in shared-proto/svc-ztunnel')"
jar="$work/quarkus-app/quarkus-run.jar"

say "servers: nginx on $SERVER:8080 and $DIRECT_SERVER:8080, iperf3 on $SERVER:5201, holder on $SERVER:9000"
start_bg nginx nginx -p "$work/nginx" -c "$work/nginx.conf" -e "$work/nginx/error.log"
start_bg iperf3 iperf3 -s -B "$SERVER" -p 5201
start_bg holder bash -c "ulimit -n 65536 2>/dev/null || true; exec $python $here/idle_conns.py serve $SERVER 9000"

# ---------------------------------------------------------------------------------------------
# Two ztunnels
# The JVM as the DaemonSet runs it: its JAVA_OPTS (k8s/ztunnel/daemonset.yaml) without the image's
# AOT cache, -XX:MaxRAM at the pod's memory limit (so MaxRAMPercentage sizes the heap as in the pod,
# not from this machine's RAM), and the same environment (MALLOC_ARENA_MAX).
daemonset="$repo/k8s/ztunnel/daemonset.yaml"
pod_opts=$(awk '/name: JAVA_OPTS/ { getline; sub(/^ *value: */, ""); gsub(/"/, ""); print; exit }' "$daemonset")
pod_limit=$(awk '/limits:/ { getline; if ($1 == "memory:") { print $2; exit } }' "$daemonset")
pod_env=$(awk '/name: MALLOC_ARENA_MAX/ { getline; sub(/^ *value: */, ""); gsub(/"/, ""); print "MALLOC_ARENA_MAX=" $0; exit }' "$daemonset")
# The ztunnel's own JVM options (JDK_JAVA_OPTIONS, read by the java launcher before JAVA_OPTS: memory
# and thread sizing that leaves the image's cache valid): given to the runs, not to the training,
# as the image is trained with JAVA_OPTS alone (native-images/images/build.sh).
pod_own=$(awk '/name: JDK_JAVA_OPTIONS/ { getline; sub(/^ *value: */, ""); gsub(/"/, ""); print; exit }' "$daemonset")
own_opts="${ZBENCH_JDK_JAVA_OPTIONS-$pod_own}"
[ -n "$pod_opts" ] && [ -n "$pod_limit" ] || die "cannot read JAVA_OPTS and the memory limit from $daemonset"
read -r -a jvm_flags <<<"$(printf '%s\n' $pod_opts | grep -v '^-XX:AOTCache=' | tr '\n' ' ')"
jvm_flags+=("-XX:MaxRAM=$(echo "$pod_limit" | sed 's/Mi$/m/; s/Gi$/g/')")
[ -n "$XMX" ] && jvm_flags+=("-Xmx$XMX")
read -r -a extra_jvm_flags <<<"${ZBENCH_JVM_OPTS:-}"
jvm_flags+=("${extra_jvm_flags[@]}")
read -r -a ztunnel_env <<<"${ZBENCH_ZTUNNEL_ENV-$pod_env}"
ztunnel() { # node, node ip, admin port, outbound capture port [, ca dir [, JVM flags...]]
  local node="$1" ip="$2" admin="$3" capture="$4" ca="${5:-$work/ca}" extra=()
  shift 4; [ $# -gt 0 ] && shift
  extra+=("$@")
  [ -n "${ZBENCH_THREADS:-}" ] && extra+=("-Dztunnel.dataplane.threads=$ZBENCH_THREADS")
  local own=()
  [ "$node" = "${node%-training}" ] && [ -n "$own_opts" ] && own=("JDK_JAVA_OPTIONS=$own_opts")
  start_bg "ztunnel-$node" env -u JDK_JAVA_OPTIONS "${ztunnel_env[@]}" "${own[@]}" "$java_home/bin/java" "${jvm_flags[@]}" \
    -Dztunnel.node-name="${node%-training}" -Dztunnel.node-ip="$ip" \
    -Dztunnel.local-config="$work/mesh.yaml" -Dztunnel.identity.ca-dir="$ca" \
    -Dztunnel.ports.hbone=15008 -Dztunnel.ports.outbound-capture="$capture" \
    -Dztunnel.ports.inbound-plaintext=0 -Dztunnel.ports.capture-address=127.0.0.1 \
    -Dztunnel.ports.socks5=0 -Dztunnel.ports.admin="$admin" \
    -Dztunnel.dataplane.socket-mark="$MARK" \
    -Dquarkus.http.host="$ip" -Dquarkus.management.host="$ip" \
    "-Dquarkus.log.category.\"dev.ambient.ztunnel.access\".level=$ACCESS_LOG" \
    "${extra[@]}" -jar "$jar"
}
wait_ready() { # name, pid, url
  local t0=$SECONDS
  for _ in $(seq 1 240); do
    if nx curl -fsS -o /dev/null "$3" 2>/dev/null; then
      say "$1 ready in $((SECONDS - t0)) s ($3)"; return 0
    fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "$1 exited; last lines of its log:" >&2; tail -30 "$work/$1.log" >&2; return 1
    fi
    sleep 0.25
  done
  echo "$1 not ready after 60 s; last lines of its log:" >&2; tail -30 "$work/$1.log" >&2; return 1
}

# The AOT cache as the image makes it (native-images/images/build.sh): one training run with the
# pods' options and -XX:AOTCacheOutput, brought to ready, probed and scraped, then stopped (the JVM
# writes the cache at exit). Trained once per jar and flags, kept in $aot_dir.
if [ "$AOT" = 1 ]; then
  aot="$aot_dir/app.aot"
  aot_key="$(cat "$work/quarkus-app/quarkus-run.jar" "$work"/quarkus-app/app/*.jar "$work"/quarkus-app/lib/main/dev.ambient* 2>/dev/null | sha256sum | cut -c1-16) ${jvm_flags[*]} ${ztunnel_env[*]}"
  if [ -s "$aot" ] && [ "$(cat "$aot_dir/key" 2>/dev/null)" = "$aot_key" ]; then
    say "AOT cache: $aot (trained $(date -u -r "$aot" +%Y-%m-%dT%H:%M:%SZ) for this jar and these flags)"
  else
    mkdir -p "$aot_dir"; rm -f "$aot" "$aot_dir/key"
    say "AOT cache: training run of node-a's ztunnel, as the image's (ready, probes, scrape, stop) -> $aot"
    t0=$SECONDS
    ztunnel node-a-training "$NODE_A" 15000 15001 "$work/ca-training" "-XX:AOTCacheOutput=$aot"
    wait_ready ztunnel-node-a-training "$pid_ztunnel_node_a_training" "http://$NODE_A:15021/healthz/ready"
    for _ in 1 2 3; do
      nx curl -fsS -o /dev/null "http://$NODE_A:15021/healthz/ready" || true
      nx curl -fsS -o /dev/null "http://$NODE_A:15021/healthz/live" || true
      nx curl -fsS -o /dev/null "http://$NODE_A:15020/metrics" || true
    done
    kill -TERM "$pid_ztunnel_node_a_training"
    wait "$pid_ztunnel_node_a_training" || true
    [ -s "$aot" ] || { tail -20 "$work/ztunnel-node-a-training.log" >&2; die "the training run wrote no AOT cache"; }
    echo "$aot_key" >"$aot_dir/key"
    say "AOT cache trained in $((SECONDS - t0)) s ($(du -m "$aot" | cut -f1) MB)"
  fi
  jvm_flags+=("-XX:AOTCache=$aot")
fi

# node-a first: it creates the local root in the shared CA dir that node-b then reads.
say "ztunnel jar: $jar_info$([ "$AOT" = 1 ] && echo ', aot-jar with the AOT cache' || echo ', fast-jar without AOT cache (ZBENCH_AOT=0)')"
say "starting ztunnel node-a ($NODE_A, capture 127.0.0.1:15001) and node-b ($NODE_B)"
echo "   JVM: ${jvm_flags[*]}; environment: ${ztunnel_env[*]:-none}${own_opts:+; JDK_JAVA_OPTIONS=$own_opts (not in the training)}"
ztunnel node-a "$NODE_A" 15000 15001
wait_ready ztunnel-node-a "$pid_ztunnel_node_a" "http://$NODE_A:15021/healthz/ready"
ztunnel node-b "$NODE_B" 15100 0
wait_ready ztunnel-node-b "$pid_ztunnel_node_b" "http://$NODE_B:15021/healthz/ready"
ZA=$pid_ztunnel_node_a
ZB=$pid_ztunnel_node_b
for p in $ZA $ZB; do [ "$(cat /proc/$p/comm)" = java ] || die "pid $p is not the ztunnel JVM"; done
grep -h "data-plane threads" "$work"/ztunnel-node-[ab].log | sed 's/^.*ztunnel for/   ztunnel for/' || true

# ---------------------------------------------------------------------------------------------
# The Go pair: the same kind of certificates as the ztunnels' (ECDSA P-256, SPIFFE URI, signed
# by the local root node-a made), HTTP/2 CONNECT over mutual TLS 1.3 with Go's x/net/http2.
say "building and starting the Go HBONE pair (client $GO_CLIENT :8080/:5201, server $GO_SERVER_NODE:15008)"
mkdir -p "$work/go"
(cd "$here/gohbone" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOTOOLCHAIN=local \
  GOCACHE="$work/go/cache" go build -o "$work/go/gohbone" main.go) || die "building gohbone failed"
go_cert() { # name, service account
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=bench" \
    -keyout "$work/go/$1.key" -out "$work/go/$1.csr" 2>/dev/null
  printf 'subjectAltName=critical,URI:spiffe://cluster.local/ns/bench/sa/%s\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$work/go/$1.ext"
  openssl x509 -req -in "$work/go/$1.csr" -CA "$work/ca/root-cert.pem" -CAkey "$work/ca/ca-key.pem" \
    -CAcreateserial -days 1 -sha256 -extfile "$work/go/$1.ext" -out "$work/go/$1.pem" 2>/dev/null
}
go_cert client bench-client && go_cert server bench-server || die "could not sign the Go pair's certificates"
go_tls() { echo -cert "$work/go/$1.pem" -key "$work/go/$1.key" -ca "$work/ca/root-cert.pem"; }
start_bg go-server "$work/go/gohbone" server -listen "$GO_SERVER_NODE:15008" -source "$GO_SERVER_NODE" $(go_tls server)
start_bg go-client "$work/go/gohbone" client -peer "$GO_SERVER_NODE:15008" $(go_tls client) \
  "$GO_CLIENT:8080=$SERVER:8080" "$GO_CLIENT:5201=$SERVER:5201"
GA=$pid_go_client GB=$pid_go_server
for _ in $(seq 1 40); do grep -q "client ready" "$work/go-client.log" && grep -q "server ready" "$work/go-server.log" && break; sleep 0.1; done

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
CLK_TCK="$(getconf CLK_TCK)"
rss_start_a=$(rss_kb "$ZA"); rss_start_b=$(rss_kb "$ZB")

# ---------------------------------------------------------------------------------------------
# Check the paths: direct must not be captured, tunnelled must go through both ztunnels over HBONE
say "checking the paths"
before=$(redirected)
body=$(nx curl -fsS --max-time 5 "http://$DIRECT_SERVER:8080/100b.txt" | wc -c)
[ "$body" = 100 ] || die "direct request to nginx failed (got $body bytes)"
[ "$(redirected)" = "$before" ] || die "the direct request was captured; it must not be"
body=$(nx curl -fsS --max-time 5 "http://$SERVER:8080/100b.txt" | wc -c)
[ "$body" = 100 ] || die "tunnelled request failed (got $body bytes); see $work/ztunnel-node-*.log"
[ "$(redirected)" -gt "$before" ] || die "the tunnelled request was not captured by the REDIRECT rule"
if [ "$ACCESS_LOG" = INFO ]; then
  ok=0
  for _ in $(seq 1 75); do
    if grep -q "outbound src=$CLIENT:[0-9]* .*via=hbone .*outcome=ok" "$work/ztunnel-node-a.log" \
      && grep -q "inbound src=$CLIENT:[0-9]* .*dst=$SERVER:8080 .*via=hbone .*outcome=ok" "$work/ztunnel-node-b.log"; then
      ok=1; break
    fi
    sleep 0.2
  done
  if [ $ok != 1 ]; then
    grep -h "dev.ambient.ztunnel.access" "$work"/ztunnel-node-*.log >&2 || true
    die "no via=hbone outcome=ok access-log lines for the test request on both nodes after 15 s"
  fi
  echo "   direct: 100 bytes, not captured; tunnel: 100 bytes, captured, access logs:"
  grep -h "src=$CLIENT:[0-9]* .*outcome=ok" "$work/ztunnel-node-a.log" | tail -1 | sed 's/^.*\(outbound src\)/     node-a: \1/'
  grep -h "src=$CLIENT:[0-9]* .*outcome=ok" "$work/ztunnel-node-b.log" | tail -1 | sed 's/^.*\(inbound src\)/     node-b: \1/'
else
  echo "   direct: 100 bytes, not captured; tunnel: 100 bytes, captured (access log is $ACCESS_LOG: not checked)"
fi

before=$(redirected)
body=$(nx curl -fsS --max-time 5 "http://$GO_CLIENT:8080/100b.txt" | wc -c)
[ "$body" = 100 ] || die "request through the Go pair failed (got $body bytes); see $work/go-*.log"
[ "$(redirected)" = "$before" ] || die "the request through the Go pair was captured; it must not be"
echo "   Go pair: 100 bytes, not captured"

if [ "${ZBENCH_SETUP_ONLY:-0}" = 1 ]; then
  say "set up; holding until interrupted (Ctrl-C or kill -TERM $$). Try, e.g.:"
  echo "   ip netns exec $NS iperf3 -c $SERVER -B $CLIENT        # tunnelled"
  echo "   ip netns exec $NS wrk -c1 -d5s --latency http://$SERVER:8080/100b.txt   # tunnelled"
  echo "   ip netns exec $NS wrk -c1 -d5s --latency http://$DIRECT_SERVER:8080/100b.txt   # direct"
  echo "   ip netns exec $NS wrk -c1 -d5s --latency http://$GO_CLIENT:8080/100b.txt   # Go pair"
  echo "   logs: $work (ztunnel pids: node-a $ZA, node-b $ZB; Go pair: client $GA, server $GB)"
  sleep infinity &
  pids+=($!)
  wait $! || true
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Measurement helpers
PROBE=(0 0 0 0 0)
probe() { "$python" "$here/cpu_probe.py" "$NS" "$$"; }
probe_start() { read -r -a PROBE <<<"$(probe)"; }
probe_stop() { # sets OTHERS (% of the machine used outside the benchmark), STEAL (%), JIT (s), LOAD
  local now
  read -r -a now <<<"$(probe)"
  local total=$((now[0] - PROBE[0])) busy=$((now[1] - PROBE[1])) ours=$((now[2] - PROBE[2]))
  local steal=$((now[3] - PROBE[3])) jit=$((now[4] - PROBE[4]))
  if [ "$total" -gt 0 ]; then
    OTHERS=$(calc "100 * ($busy - $ours) / $total" .0f); STEAL=$(calc "100 * $steal / $total" .0f)
    [ "${OTHERS#-}" = "$OTHERS" ] || OTHERS=0
  else
    OTHERS=nan STEAL=nan
  fi
  JIT=$(calc "$jit / $CLK_TCK" .2f)
  LOAD=$(cut -d' ' -f1 /proc/loadavg)
  OTHERS_ALL+=("$OTHERS"); STEAL_ALL+=("$STEAL"); LOAD_ALL+=("$LOAD")
}
OTHERS_ALL=() STEAL_ALL=() LOAD_ALL=()

# The three paths. Each proxy pair is two processes whose CPU is read from /proc/<pid>/stat.
path_pids() { case "$1" in ours) echo "$ZA $ZB" ;; go) echo "$GA $GB" ;; *) echo "" ;; esac; }
path_http() { case "$1" in ours) echo "$SERVER" ;; go) echo "$GO_CLIENT" ;; *) echo "$DIRECT_SERVER" ;; esac; }
path_iperf() { case "$1" in ours) echo "$SERVER $CLIENT" ;; go) echo "$GO_CLIENT $DIRECT_CLIENT" ;; *) echo "$SERVER $DIRECT_CLIENT" ;; esac; }
ticks_of() { local p out=(); for p in "$@"; do out+=("$(cpu_ticks "$p")"); done; echo "${out[@]:-}"; }
ticks_since() { # "before ticks" pids... -> "delta per pid"
  local -a before=($1); shift
  local i=0 p out=()
  for p in "$@"; do out+=($(( $(cpu_ticks "$p") - before[i] ))); i=$((i + 1)); done
  echo "${out[@]:-}"
}

iperf_run() { # path, label, extra args...; sets I_GBPS (receiver side), I_BYTES, I_TICKS (per pid)
  local path="$1" label="$2"; shift 2
  local out="$work/iperf-$label.json" pids before target bind
  read -r target bind <<<"$(path_iperf "$path")"
  pids=$(path_pids "$path")
  I_GBPS=nan I_BYTES=0
  before=$(ticks_of $pids)
  probe_start
  # A run that has not ended 20 s after its time counts as failed (nan), not as a hung benchmark.
  if nx timeout -s INT $((DUR + 20)) iperf3 -c "$target" -p 5201 -B "$bind" -t "$DUR" -J "$@" >"$out" 2>&1; then
    read -r I_GBPS I_BYTES < <("$python" -c 'import json,sys; d=json.load(open(sys.argv[1]))["end"]["sum_received"]; print("%.2f %d" % (d["bits_per_second"]/1e9, d["bytes"]))' "$out" 2>/dev/null || echo "nan 0")
  else
    echo "   iperf3 $label failed: $(tail -3 "$out" | tr '\n' ' ')" >&2
  fi
  probe_stop
  I_TICKS=$(ticks_since "$before" $pids)
}

to_us() { # wrk latency "29.00us" / "1.20ms" / "1.00s" -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000; else { print "nan"; exit }; printf "%.1f", n * m }'
}
wrk_run() { # path, label, connections; sets W_RPS, W_REQ, W_P50, W_P99, W_TICKS (per pid)
  local path="$1" label="$2" conns="$3" out="$work/wrk-$2.txt" pids before
  pids=$(path_pids "$path")
  W_RPS=nan W_REQ=nan W_P50=nan W_P99=nan
  before=$(ticks_of $pids)
  probe_start
  nx timeout -s INT $((DUR + 20)) wrk -t "$WRK_THREADS" -c "$conns" -d "${DUR}s" --latency "http://$(path_http "$path"):8080/100b.txt" >"$out" 2>&1 || true
  probe_stop
  W_TICKS=$(ticks_since "$before" $pids)
  W_RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
  W_REQ=$(awk '/ requests in / { print $1 }' "$out")
  W_P50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
  W_P99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
  if grep -q "Non-2xx\|Socket errors" "$out"; then
    echo "   wrk $label: $(grep -h "Non-2xx\|Socket errors" "$out" | tr -s ' ')" >&2
  fi
  : "${W_RPS:=nan}" "${W_REQ:=nan}" "${W_P50:=nan}" "${W_P99:=nan}"
}
per_req_us() { # ticks, requests
  isnum "$2" && [ "$2" -gt 0 ] && calc "$1 * 1000000 / $CLK_TCK / $2" || echo nan
}
per_gb_s() { # ticks, bytes -> CPU seconds per GB (10^9 bytes)
  [ "$2" -gt 0 ] && calc "$1 / $CLK_TCK / ($2 / 1e9)" .2f || echo nan
}
median() { # numbers (non-numbers ignored) -> median, or nan
  printf '%s\n' "$@" | grep -E '^-?[0-9]+([.][0-9]+)?$' | sort -g \
    | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
div() { isnum "$1" && isnum "$2" && awk -v a="$1" -v b="$2" 'BEGIN { exit !(b != 0) }' && calc "$1 / $2" .2f || echo nan; }
sub() { isnum "$1" && isnum "$2" && calc "$1 - $2" .1f || echo nan; }

# ---------------------------------------------------------------------------------------------
# Wait (a little) for a quiet machine: other users' builds distort every number on 2 cores
QUIET_WAIT="${ZBENCH_QUIET_WAIT:-30}"
t0=$SECONDS
while :; do
  probe_start; sleep 2; probe_stop
  OTHERS_ALL=() STEAL_ALL=() LOAD_ALL=()
  if [ "$OTHERS" != nan ] && [ "$OTHERS" -le 15 ]; then
    say "machine is quiet enough: other processes use $OTHERS% of its CPU (load average $LOAD)"
    break
  fi
  if [ $((SECONDS - t0)) -ge "$QUIET_WAIT" ]; then
    say "WARNING: other processes use $OTHERS% of the machine's CPU (waited ${QUIET_WAIT} s, load average $LOAD); results will be disturbed"
    ps -eo pcpu,etimes,comm --sort=-pcpu | awk 'NR > 1 && NR <= 4 { printf "     %s%% %s (running %s s)\n", $1, $3, $2 }'
    break
  fi
  sleep 1
done

# ---------------------------------------------------------------------------------------------
# Warm-up: until the JIT compilers of both ztunnels have settled (at most 4 rounds)
say "warm-up through both pairs until the JIT settles (rounds of wrk 3 s + iperf3 3 s each way)"
for round in 1 2 3 4; do
  probe_start
  nx wrk -t "$WRK_THREADS" -c 16 -d 3s "http://$SERVER:8080/100b.txt" >/dev/null 2>&1 || true
  nx timeout -s INT 30 iperf3 -c "$SERVER" -p 5201 -B "$CLIENT" -t 3 >/dev/null 2>&1 || true
  nx timeout -s INT 30 iperf3 -c "$SERVER" -p 5201 -B "$CLIENT" -t 3 -R >/dev/null 2>&1 || true
  if [ $round = 1 ]; then
    nx wrk -t "$WRK_THREADS" -c 16 -d 2s "http://$GO_CLIENT:8080/100b.txt" >/dev/null 2>&1 || true
    nx timeout -s INT 30 iperf3 -c "$GO_CLIENT" -p 5201 -B "$DIRECT_CLIENT" -t 2 >/dev/null 2>&1 || true
  fi
  probe_stop
  echo "   round $round: JIT compiler threads used $JIT s of CPU"
  isnum "$JIT" && awk -v j="$JIT" 'BEGIN { exit !(j < 0.5) }' && break
done
OTHERS_ALL=() STEAL_ALL=() LOAD_ALL=()

# ---------------------------------------------------------------------------------------------
# Interleaved rounds: each test runs direct, through our pair and through the Go pair back to
# back, in an order rotated every round, so a neighbour's build hits all three alike. Ratios are
# taken within a round; the summary judges the median of the rounds.
declare -A R
pair_cost() { # key, name, "ticks of first ticks of second", per-function, amount, unit: stores the
  # pair's CPU per amount in R[key,name] and each process's in R[key,name1] / R[key,name2]; sets cpu
  local key="$1" name="$2" per="$4" amount="$5" t1 t2
  read -r t1 t2 <<<"$3"
  R[$key,$name]=$($per "$((t1 + t2))" "$amount")
  R[$key,${name}1]=$($per "$t1" "$amount"); R[$key,${name}2]=$($per "$t2" "$amount")
  cpu="${R[$key,$name]} $6 (${R[$key,${name}1]} / ${R[$key,${name}2]})"
}
PATHS=(direct ours go)
say "$ROUNDS interleaved rounds: iperf3 one stream each way, wrk 100-byte keep-alive at 1 and 16 connections, ${DUR} s per run"
printf '   %-5s %-5s %-6s %-38s %-40s %s\n' round test path result "proxy CPU (pair: first / second)" "others / load"
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${PATHS[@]:$(( (r - 1) % 3 ))}" "${PATHS[@]:0:$(( (r - 1) % 3 ))}")
  for test in up down c1 c16; do
    for path in "${order[@]}"; do
      cpu=""
      case $test in
        up|down)
          extra=(); [ $test = down ] && extra=(-R)
          iperf_run "$path" "$path-$test-$r" "${extra[@]}"
          R[$test,$path,$r]=$I_GBPS
          result="$I_GBPS Gbit/s"
          [ "$path" = direct ] || pair_cost "$test,$path,$r" gb "$I_TICKS" per_gb_s "$I_BYTES" s/GB ;;
        c1|c16)
          wrk_run "$path" "$path-$test-$r" "${test#c}"
          R[$test,$path,$r]=$W_RPS R[$test,$path,$r,p50]=$W_P50 R[$test,$path,$r,p99]=$W_P99
          result="$W_RPS req/s, p50 $W_P50 p99 $W_P99 us"
          [ "$path" = direct ] || pair_cost "$test,$path,$r" us "$W_TICKS" per_req_us "$W_REQ" us/req ;;
      esac
      printf '   %-5s %-5s %-6s %-38s %-40s %s\n' "$r" "$test" "$path" "$result" "$cpu" "$OTHERS% / $LOAD"
    done
  done
done

# Per-round figures and ratios, then medians over the rounds
med() { # key pattern with @ for the round
  local vals=() r
  for ((r = 1; r <= ROUNDS; r++)); do vals+=("${R[${1//@/$r}]:-nan}"); done
  median "${vals[@]}"
}
declare -A M
for ((r = 1; r <= ROUNDS; r++)); do
  for t in up down; do
    R[$t,od,$r]=$(div "${R[$t,ours,$r]}" "${R[$t,direct,$r]}")
    R[$t,gd,$r]=$(div "${R[$t,go,$r]}" "${R[$t,direct,$r]}")
    R[$t,og,$r]=$(div "${R[$t,ours,$r]}" "${R[$t,go,$r]}")
    R[$t,gbr,$r]=$(div "${R[$t,ours,$r,gb]:-nan}" "${R[$t,go,$r,gb]:-nan}")
  done
  R[c1,ours,$r,add]=$(sub "${R[c1,ours,$r,p50]}" "${R[c1,direct,$r,p50]}")
  R[c1,go,$r,add]=$(sub "${R[c1,go,$r,p50]}" "${R[c1,direct,$r,p50]}")
  R[c16,og,$r]=$(div "${R[c16,ours,$r]}" "${R[c16,go,$r]}")
  echo "   round $r ratios: ours/direct up ${R[up,od,$r]} down ${R[down,od,$r]}; ours/Go up ${R[up,og,$r]} down ${R[down,og,$r]};" \
    "CPU per GB ours/Go up ${R[up,gbr,$r]} down ${R[down,gbr,$r]}; added p50 ours ${R[c1,ours,$r,add]} us, Go ${R[c1,go,$r,add]} us"
done
for key in up,direct,@ up,ours,@ up,go,@ down,direct,@ down,ours,@ down,go,@ up,od,@ down,od,@ up,gd,@ down,gd,@ \
  up,og,@ down,og,@ up,gbr,@ down,gbr,@ up,ours,@,gb up,go,@,gb down,ours,@,gb down,go,@,gb \
  up,ours,@,gb1 up,ours,@,gb2 down,ours,@,gb1 down,ours,@,gb2 \
  c1,direct,@ c1,ours,@ c1,go,@ c16,direct,@ c16,ours,@ c16,go,@ c16,og,@ \
  c1,direct,@,p50 c1,ours,@,p50 c1,go,@,p50 c1,direct,@,p99 c1,ours,@,p99 c1,go,@,p99 \
  c16,direct,@,p50 c16,ours,@,p50 c16,go,@,p50 c16,direct,@,p99 c16,ours,@,p99 c16,go,@,p99 \
  c1,ours,@,add c1,go,@,add c16,ours,@,us c16,ours,@,us1 c16,ours,@,us2 c16,go,@,us c1,ours,@,us; do
  M[$key]=$(med "$key")
done

# ---------------------------------------------------------------------------------------------
say "memory: RSS idle, then with $IDLE_CONNS idle tunnelled connections held open"
sleep 2
rss_idle_a=$(rss_kb "$ZA"); rss_idle_b=$(rss_kb "$ZB")
release="$work/release-idle"
start_bg idle bash -c "ulimit -n 65536 2>/dev/null || true; exec $python $here/idle_conns.py open $SERVER 9000 $IDLE_CONNS $release 60"
established=""
for _ in $(seq 1 700); do
  established=$(grep -o "established [0-9]* of [0-9]*" "$work/idle.log" 2>/dev/null || true)
  [ -n "$established" ] && break
  kill -0 "$pid_idle" 2>/dev/null || break
  sleep 0.1
done
sleep 2
rss_held_a=$(rss_kb "$ZA"); rss_held_b=$(rss_kb "$ZB")
pool=$(nx curl -fsS --max-time 3 "http://$NODE_A:15020/metrics" 2>/dev/null | awk '/^ztunnel_pool_connections/ { printf "%d", $2 }')
touch "$release"
for _ in $(seq 1 100); do kill -0 "$pid_idle" 2>/dev/null || break; sleep 0.1; done
sleep 2   # let both ztunnels finish closing the tunnels before anything is stopped
echo "   ${established:-no connections established} (through the tunnel, answered by the holder); node-a pooled HBONE connections: ${pool:-?}"
n_est=$(echo "$established" | awk '{ print $2 }')
if [ "${n_est:-0}" != "$IDLE_CONNS" ]; then
  echo "   not every connection made it; node-a's access log says:"
  grep -h "dst=$SERVER:9000 .*outcome=failed" "$work/ztunnel-node-a.log" 2>/dev/null | grep -o 'reason=.*' | sort | uniq -c | head -5 \
    | sed 's/^/     /' || true
fi
if isnum "${n_est:-x}" && [ "$n_est" -gt 0 ]; then
  grow_a=$(calc "($rss_held_a - $rss_idle_a) / 1024 * 1000 / $n_est")
  grow_b=$(calc "($rss_held_b - $rss_idle_b) / 1024 * 1000 / $n_est")
else
  grow_a=nan grow_b=nan
fi
mb() { calc "$1 / 1024"; }
echo "   node-a RSS: after start $(mb "$rss_start_a") MB, idle after load $(mb "$rss_idle_a") MB, with connections $(mb "$rss_held_a") MB"
echo "   node-b RSS: after start $(mb "$rss_start_b") MB, idle after load $(mb "$rss_idle_b") MB, with connections $(mb "$rss_held_b") MB"
echo "   Go pair RSS now: client $(mb "$(rss_kb "$GA")") MB, server $(mb "$(rss_kb "$GB")") MB"

# ---------------------------------------------------------------------------------------------
# Summary
verdict() { # value, op, goal
  isnum "$1" || { echo MISS; return; }
  awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? (v >= g) : (v <= g); print ok ? "PASS" : "MISS" }'
}
pct() { isnum "$1" && calc "100 * $1" .0f || echo nan; }
others_max=$(printf '%s\n' "${OTHERS_ALL[@]}" | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
others_avg=$(printf '%s\n' "${OTHERS_ALL[@]}" | awk '/^[0-9]+$/ { s += $1; n++ } END { printf "%.0f", n ? s / n : 0 }')
steal_max=$(printf '%s\n' "${STEAL_ALL[@]}" | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
load_range=$(printf '%s\n' "${LOAD_ALL[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }')

echo
say "results ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, kernel $(uname -r); medians of $ROUNDS interleaved rounds; load average $load_range)"
row() { printf '%-46s %-40s %-10s %s\n' "$@"; }
row "measure" "measured" "goal" "verdict"
row "---------------------------------------------" "---------------------------------------" "---------" "-------"
row "Gbit/s up: direct / ours / Go" "${M[up,direct,@]} / ${M[up,ours,@]} / ${M[up,go,@]}" "-" "info"
row "Gbit/s down (-R): direct / ours / Go" "${M[down,direct,@]} / ${M[down,ours,@]} / ${M[down,go,@]}" "-" "info"
row "throughput up, ours/direct" "$(pct "${M[up,od,@]}")% (Go/direct $(pct "${M[up,gd,@]}")%)" ">= 40%" "$(verdict "$(pct "${M[up,od,@]}")" '>=' 40)"
row "throughput down, ours/direct" "$(pct "${M[down,od,@]}")% (Go/direct $(pct "${M[down,gd,@]}")%)" ">= 40%" "$(verdict "$(pct "${M[down,od,@]}")" '>=' 40)"
row "throughput up, ours/Go" "${M[up,og,@]}x" ">= 2x" "$(verdict "${M[up,og,@]}" '>=' 2)"
row "throughput down, ours/Go" "${M[down,og,@]}x" ">= 2x" "$(verdict "${M[down,og,@]}" '>=' 2)"
row "pair CPU s per GB up: ours / Go" "${M[up,ours,@,gb]} / ${M[up,go,@,gb]} (a ${M[up,ours,@,gb1]}, b ${M[up,ours,@,gb2]})" "-" "info"
row "pair CPU s per GB down: ours / Go" "${M[down,ours,@,gb]} / ${M[down,go,@,gb]} (a ${M[down,ours,@,gb1]}, b ${M[down,ours,@,gb2]})" "-" "info"
row "CPU per GB up, ours/Go" "${M[up,gbr,@]}x" "<= 0.5x" "$(verdict "${M[up,gbr,@]}" '<=' 0.5)"
row "CPU per GB down, ours/Go" "${M[down,gbr,@]}x" "<= 0.5x" "$(verdict "${M[down,gbr,@]}" '<=' 0.5)"
row "req/s 1 conn: direct / ours / Go" "${M[c1,direct,@]} / ${M[c1,ours,@]} / ${M[c1,go,@]}" "-" "info"
row "req/s 16 conns: direct / ours / Go" "${M[c16,direct,@]} / ${M[c16,ours,@]} / ${M[c16,go,@]} (ours/Go ${M[c16,og,@]}x)" "-" "info"
row "p50 / p99 1 conn (us): direct" "${M[c1,direct,@,p50]} / ${M[c1,direct,@,p99]}" "-" "info"
row "p50 / p99 1 conn (us): ours / Go" "${M[c1,ours,@,p50]} / ${M[c1,ours,@,p99]}; ${M[c1,go,@,p50]} / ${M[c1,go,@,p99]}" "-" "info"
row "p50 / p99 16 conns (us): direct" "${M[c16,direct,@,p50]} / ${M[c16,direct,@,p99]}" "-" "info"
row "p50 / p99 16 conns (us): ours / Go" "${M[c16,ours,@,p50]} / ${M[c16,ours,@,p99]}; ${M[c16,go,@,p50]} / ${M[c16,go,@,p99]}" "-" "info"
row "added p50 latency, 1 connection, ours" "${M[c1,ours,@,add]} us (Go ${M[c1,go,@,add]} us)" "<= 50 us" "$(verdict "${M[c1,ours,@,add]}" '<=' 50)"
row "CPU per request, 16 conns, ours (a + b)" "${M[c16,ours,@,us]} us (a ${M[c16,ours,@,us1]}, b ${M[c16,ours,@,us2]}; Go ${M[c16,go,@,us]})" "-" "info"
row "CPU per request, node-a (16 conns)" "${M[c16,ours,@,us1]} us" "<= 60 us" "$(verdict "${M[c16,ours,@,us1]}" '<=' 60)"
row "CPU per request, node-b (16 conns)" "${M[c16,ours,@,us2]} us" "<= 60 us" "$(verdict "${M[c16,ours,@,us2]}" '<=' 60)"
row "packaging" "$([ "$AOT" = 1 ] && echo "aot-jar + AOT cache (as the image)" || echo "fast-jar, no AOT cache (ZBENCH_AOT=0)")" "-" "info"
row "RSS idle before load, node-a / node-b" "$(mb "$rss_start_a") / $(mb "$rss_start_b") MB" "-" "info"
row "RSS idle after load, node-a" "$(mb "$rss_idle_a") MB" "<= 100 MB" "$(verdict "$(mb "$rss_idle_a")" '<=' 100)"
row "RSS idle after load, node-b" "$(mb "$rss_idle_b") MB" "<= 100 MB" "$(verdict "$(mb "$rss_idle_b")" '<=' 100)"
row "RSS growth per 1,000 idle conns, node-a" "$grow_a MB" "<= 20 MB" "$(verdict "$grow_a" '<=' 20)"
row "RSS growth per 1,000 idle conns, node-b" "$grow_b MB" "<= 20 MB" "$(verdict "$grow_b" '<=' 20)"
row "CPU used by others during timed runs" "avg ${others_avg}%, max ${others_max:-?}% (steal max ${steal_max:-?}%)" "~0%" \
  "$( [ "${others_max:-100}" -le 10 ] && echo quiet || echo DISTURBED)"
cat <<MSG

What limits these numbers:
- One machine, $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), a VM), shared by the load
  generator (iperf3 or wrk), the server (nginx with 1 worker, or iperf3) and both ztunnel JVMs:
  a direct run keeps two processes busy, a tunnelled run four, so the proxies compete with client
  and server for the same 2 cores. Anything else running on the machine (builds, tests) takes
  from the same 2 cores: see the 'others' figures; with the kernel's autogroup scheduling a busy
  build in another session gets a full share against all of the benchmark's processes together.
- Loopback: no NIC, no wire latency, 64 KiB MTU. A direct stream is one memcpy between two
  sockets, so "direct" is far faster than any real network and the ratio is harsher than on a
  real node. Through the tunnel every byte crosses 3 TCP connections, is encrypted and decrypted
  (TLS 1.3, BoringSSL via netty-tcnative when available) and framed as HTTP/2 DATA.
- Each ztunnel runs $(grep -ho "[0-9]* data-plane threads ([a-z]*)" "$work/ztunnel-node-a.log" | head -1 || echo "its default data-plane threads"),
  $($java_home/bin/java -version 2>&1 | head -1 | tr -d '"'), the DaemonSet's JVM options (printed above). CPU figures are the whole
  JVM (event loops, GC, JIT) from /proc/<pid>/stat at $CLK_TCK ticks/s, after a warm-up that waits for
  the JIT compilers to settle.
- Access log: $ACCESS_LOG. One line per connection, when it closes; the keep-alive runs open at most
  17 connections, so it costs nothing measurable (ZBENCH_ACCESS_LOG=WARN turns it off).
- RSS growth is measured after the load runs, when heap and Netty's buffer pools have already
  grown; the 1,000 connections share ~$(( (IDLE_CONNS + 99) / 100 )) pooled HBONE connections (100 streams each).
- The Go pair (gohbone/main.go, Go $(go version | awk '{ print $3 }'), Debian's x/net/http2) does what the ztunnels
  do on the wire (mutual TLS 1.3, HTTP/2 CONNECT, 1 MiB frames, 4 MiB stream windows) without
  policy, capture, metrics or access log: a yardstick, not a ztunnel.
- $ROUNDS interleaved rounds (ZBENCH_ROUNDS); ratios within each round, medians judged. On this
  machine expect +-10% between quiet runs, far more when disturbed.
MSG
