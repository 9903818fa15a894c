package dev.ambient.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * The README's main command, end to end, as a user sees it: {@code meshbox up} starts the whole mesh
 * (ca, xds reading Istio YAML, a cni-agent and an in-pod ztunnel per node, a waypoint, Prometheus)
 * and the sample pods as network namespaces running real programs; requests go from inside the
 * pods with curl, exactly as {@code meshbox exec} runs them.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class MeshInABoxIT {

    static final Path REPO = Path.of("..").toAbsolutePath().normalize();
    static final Path MESHBOX = REPO.resolve("integration-tests/meshbox/meshbox");
    static final Path STATE = Path.of("target", "meshbox").toAbsolutePath();
    static final Path SAMPLES = STATE.resolve("samples");
    static final String PROMETHEUS = "http://10.44.0.30:9090";
    static final String HTTPBIN_V1 = "http://10.44.2.11:8080/";
    /** samples/egress.yaml's waypoint pod, in the istio-egress namespace. */
    static final String EGRESS_WAYPOINT = "http://10.44.1.100:15020";
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    static final ObjectMapper JSON = new ObjectMapper();

    record Result(int exit, String out) {
    }

    @BeforeAll
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    static void up() throws Exception {
        meshbox("down");
        Result up = meshbox("up");
        if (up.exit() != 0) {
            keepLogs();
        }
        assertEquals(0, up.exit(), "meshbox up failed (logs in target/meshbox-logs):\n" + up.out());
    }

    @AfterAll
    static void downIfStillUp() throws Exception {
        if (Files.exists(STATE)) {
            keepLogs();
            meshbox("down");
        }
    }

    /** The box's logs outlive it, for whoever reads a failed run. */
    static void keepLogs() throws IOException {
        Path logs = STATE.resolve("logs");
        Path kept = Path.of("target", "meshbox-logs");
        if (Files.isDirectory(logs)) {
            Files.createDirectories(kept);
            try (var files = Files.list(logs)) {
                for (Path f : files.toList()) {
                    Files.copy(f, kept.resolve(f.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    static Result meshbox(String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(MESHBOX.toString()));
        command.addAll(List.of(args));
        return run(command, Duration.ofMinutes(5));
    }

    static Result run(List<String> command, Duration timeout) throws Exception {
        return run(command, timeout, Map.of());
    }

    /** With {@code env} added to the environment (a restarted service inherits it, as Quarkus config). */
    static Result run(List<String> command, Duration timeout, Map<String, String> env) throws Exception {
        Path out = Files.createTempFile("meshbox-it", ".out");
        try {
            ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile());
            pb.environment().putAll(env);
            pb.environment().put("MESHBOX_DIR", STATE.toString());
            pb.environment().put("MESHBOX_SKIP_BUILD", "1");
            Process p = pb.start();
            p.getOutputStream().close();
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                fail(String.join(" ", command) + " did not finish in " + timeout + ":\n" + Files.readString(out));
            }
            return new Result(p.exitValue(), Files.readString(out));
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /** curl inside a pod, as {@code meshbox exec POD curl ...}. */
    static Result curl(String pod, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(MESHBOX.toString(), "exec", pod, "curl", "-sS", "--max-time", "10"));
        command.addAll(List.of(args));
        return run(command, Duration.ofSeconds(90));
    }

    static String get(String url) throws IOException, InterruptedException {
        return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }

    static void await(String what, Callable<Boolean> condition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (condition.call()) {
                return;
            }
            Thread.sleep(300);
        }
        fail("not within 30 s: " + what);
    }

    static boolean reachesHttpbin(String pod) throws Exception {
        Result r = curl(pod, "--max-time", "3", HTTPBIN_V1);
        return r.exit() == 0 && r.out().contains("hello from httpbin-v1");
    }

    @Test
    @Order(1)
    void serviceTrafficIsSplit90To10ByTheWaypoint() throws Exception {
        // One curl, 1,000 requests on one connection: the waypoint routes each request on its own.
        Result r = curl("sleep", "--max-time", "120", "http://httpbin/?[1-1000]");
        assertEquals(0, r.exit(), r.out());
        long v1 = r.out().lines().filter(l -> l.equals("hello from httpbin-v1")).count();
        long v2 = r.out().lines().filter(l -> l.equals("hello from httpbin-v2")).count();
        assertEquals(1000, v1 + v2, "every request answered by one of the versions:\n" + r.out().lines().limit(5).toList());
        // 10% of 1,000 is 100 with a standard deviation of about 9.5: 60..140 is four of them.
        assertTrue(v2 >= 60 && v2 <= 140, "v1=" + v1 + " v2=" + v2 + ", expected about 900/100");
    }

    @Test
    @Order(2)
    void theWaypointEnforcesTheL7PolicyAndReportsIstioRequestMetrics() throws Exception {
        Result denied = curl("sleep", "-i", "http://httpbin/admin");
        assertTrue(denied.out().startsWith("HTTP/1.1 403"), denied.out());
        assertTrue(denied.out().contains("RBAC: access denied"), denied.out());
        Result allowed = curl("sleep", "http://httpbin/anything");
        assertTrue(allowed.out().startsWith("hello from httpbin-v"), allowed.out());

        String metrics = get("http://10.44.2.100:15020/metrics");
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("reporter=\"waypoint\"")
                && l.contains("source_workload=\"sleep\"")
                && l.contains("source_principal=\"spiffe://cluster.local/ns/default/sa/sleep\"")
                && l.contains("destination_service=\"httpbin.default.svc.cluster.local\"")
                && l.contains("response_code=\"403\"")), "the waypoint counts the denied request as Istio does");
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("istio_request_duration_milliseconds_bucket{")
                && l.contains("destination_workload=\"httpbin-v1\"")), "request latency histogram per workload");
    }

    /**
     * Egress control (samples/egress.yaml): sleep resolves api.example.com through its ztunnel's
     * DNS proxy to the ServiceEntry's auto-allocated address; the egress waypoint in its own namespace
     * (istio-egress, named by istio.io/use-waypoint-namespace) lets GET /get out and refuses /admin,
     * originates TLS to the outside world's HTTPS server (verified against the box's test CA), and
     * reports the ServiceEntry host as destination service; default's waypoint never sees it.
     */
    @Test
    @Order(2)
    void egressGoesThroughTheWaypointWithPolicyAndOriginatedTls() throws Exception {
        Result resolved = run(List.of(MESHBOX.toString(), "exec", "sleep", "getent", "hosts", "api.example.com"),
                Duration.ofSeconds(30));
        assertTrue(resolved.out().startsWith("240.240."), "the ztunnel's DNS proxy answers the ServiceEntry's"
                + " address, not the resolver's 10.44.200.10: " + resolved.out());

        Result allowed = curl("sleep", "http://api.example.com/get");
        assertEquals(0, allowed.exit(), allowed.out());
        assertTrue(allowed.out().startsWith("outside https api.example.com /get"),
                "the app spoke HTTP, the outside world saw TLS: " + allowed.out());

        Result denied = curl("sleep", "-i", "http://api.example.com/admin");
        assertTrue(denied.out().startsWith("HTTP/1.1 403"), denied.out());
        assertTrue(denied.out().contains("RBAC: access denied"), denied.out());
        String outside = Files.readString(STATE.resolve("logs/pod-outside-https.log"));
        assertTrue(outside.contains("request https api.example.com /get"), outside);
        assertFalse(outside.contains("/admin"), "the denied request never left the mesh: " + outside);

        String metrics = get(EGRESS_WAYPOINT + "/metrics");
        for (String code : List.of("200", "403")) {
            assertTrue(metrics.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                    && l.contains("source_workload=\"sleep\"")
                    && l.contains("destination_service=\"api.example.com\"")
                    && l.contains("response_code=\"" + code + "\"")), "the waypoint counts the egress request ("
                    + code + ") with the ServiceEntry host as destination");
        }
        assertFalse(get("http://10.44.2.100:15020/metrics").contains("api.example.com"),
                "the egress traffic went through istio-egress's waypoint, not default's");
    }

    /**
     * The application sees the client pod's address: httpbin-v1 (on node-b, enrolled in-pod by the
     * node agent) logs sleep's pod IP (10.44.1.10, node-a) for a request through both ztunnels
     * (HBONE, no waypoint: by pod IP). Before, it logged its own address, 10.44.2.11.
     */
    @Test
    @Order(3)
    void theApplicationLogsTheClientPodsAddress() throws Exception {
        String path = "/source-ip-" + System.nanoTime();
        Result r = curl("sleep", HTTPBIN_V1.substring(0, HTTPBIN_V1.length() - 1) + path);
        assertTrue(r.out().startsWith("hello from httpbin-v1"), r.out());
        await("httpbin-v1's log line for " + path, () -> httpbinLogs().contains(path));
        String line = httpbinLogs().lines().filter(l -> l.contains(path)).findFirst().orElseThrow();
        assertTrue(line.startsWith("10.44.1.10 "), "httpbin-v1 saw sleep's pod IP: " + line);
    }

    /**
     * A raw client inside the sleep pod, as a hostile program would write one: connect to httpbin
     * (through the waypoint), wait, send {@code request}, print the first line of the answer, or
     * "closed" when the connection ends without one.
     */
    static Result rawClient(double pauseSeconds, String request) throws Exception {
        String script = """
                import socket, sys, time
                s = socket.create_connection(("httpbin", 80), timeout=15)
                time.sleep(float(sys.argv[1]))
                try:
                    s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
                    answer = s.recv(4096)
                except OSError:
                    answer = b""
                print(answer.split(b"\\r\\n")[0].decode("latin-1") if answer else "closed")
                """;
        return run(List.of(MESHBOX.toString(), "exec", "sleep", "python3", "-c", script,
                Double.toString(pauseSeconds), request), Duration.ofSeconds(60));
    }

    static String httpbinLogs() throws IOException {
        return Files.readString(STATE.resolve("logs/pod-httpbin-v1.log"))
                + Files.readString(STATE.resolve("logs/pod-httpbin-v2.log"));
    }

    @Test
    @Order(2)
    void aSlowOrOddClientDoesNotWalkAroundTheL7Policy() throws Exception {
        // Waiting before the first byte used to make the waypoint forward the stream as raw TCP,
        // with no L7 policy: httpbin's port is declared http, so it is HTTP whatever the pace.
        Result slow = rawClient(2.0, "GET /admin HTTP/1.1\\r\\nHost: httpbin\\r\\nConnection: close\\r\\n\\r\\n");
        assertEquals("HTTP/1.1 403 Forbidden", slow.out().trim(), "GET /admin after a 2 s pause");
        // Bytes that are not HTTP on an http port are refused by the waypoint, not passed to the app.
        Result odd = rawClient(0, "\\x16\\x03\\x01\\x00\\x2a\\x01\\x00\\x00\\x26\\x03\\x03GET /admin HTTP/1.1\\r\\n\\r\\n");
        assertEquals("HTTP/1.1 400 Bad Request", odd.out().trim(), "TLS-looking bytes on a port declared http");
        // And an escaped slash does not smuggle the path past the policy.
        Result escaped = curl("sleep", "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is",
                "http://httpbin/public%2F..%2Fadmin");
        assertEquals("400", escaped.out().trim(), escaped.out());
        assertFalse(httpbinLogs().contains("admin"), "httpbin never saw /admin:\n" + httpbinLogs());
        Result good = rawClient(0.5, "GET /after HTTP/1.1\\r\\nHost: httpbin\\r\\nConnection: close\\r\\n\\r\\n");
        assertEquals("HTTP/1.1 200 OK", good.out().trim(), "a good client still gets through");
    }

    /**
     * End-user identity (samples/jwt.yaml), as Istio's JWT docs write it: tokens minted by
     * pods/mint-token.py (python3-jwt) with the key the idp pod made at its start, checked by the
     * waypoint against the key set it fetched from that pod. Only a token with groups=admins reaches
     * /reports; a valid token without the claim gets 403, an invalid one 401, and without a token
     * the paths the policy leaves open are reached, /reports is not.
     */
    @Test
    @Order(2)
    void onlyATokenWithTheClaimReachesTheProtectedPath() throws Exception {
        String admin = mint("--claim", "groups=admins");
        String dev = mint("--sub", "bob", "--claim", "groups=dev");
        String expired = mint("--ttl", "-600", "--claim", "groups=admins");
        // The dev token's payload rewritten to claim admins, its signature kept: a forgery.
        String[] parts = dev.split("\\.");
        String payload = new String(java.util.Base64.getUrlDecoder().decode(parts[1]), StandardCharsets.UTF_8);
        assertTrue(payload.contains("\"dev\""), payload);
        String forged = parts[0] + "." + java.util.Base64.getUrlEncoder().withoutPadding()
                .encodeToString(payload.replace("\"dev\"", "\"admins\"").getBytes(StandardCharsets.UTF_8))
                + "." + parts[2];

        // The waypoint fetched the key set when the policy arrived; the first try may precede the idp.
        await("a token with groups=admins reaches /reports", () -> reports(admin).startsWith("HTTP/1.1 200"));
        String ok = reports(admin);
        assertTrue(ok.contains("hello from httpbin-v") && ok.contains(": /reports"), ok);

        String noClaim = reports(dev);
        assertTrue(noClaim.startsWith("HTTP/1.1 403") && noClaim.contains("RBAC: access denied"), noClaim);
        for (String invalid : List.of(expired, forged)) {
            String refused = reports(invalid);
            assertTrue(refused.startsWith("HTTP/1.1 401"), refused);
            assertTrue(refused.contains("WWW-Authenticate: Bearer") || refused.contains("www-authenticate: Bearer"),
                    refused);
        }
        assertTrue(reports(expired).contains("Jwt is expired"));
        assertTrue(reports(forged).contains("Jwt verification fails"));

        Result anonymousReports = curl("sleep", "-i", "http://httpbin/reports");
        assertTrue(anonymousReports.out().startsWith("HTTP/1.1 403"), anonymousReports.out());
        Result anonymousElsewhere = curl("sleep", "http://httpbin/anything");
        assertTrue(anonymousElsewhere.out().startsWith("hello from httpbin-v"), anonymousElsewhere.out());
        // A verified token is not passed on to the application.
        Result headers = curl("sleep", "http://httpbin/headers", "-H", "Authorization: Bearer " + dev);
        assertTrue(headers.out().contains("\"pod\""), headers.out());
        assertFalse(headers.out().toLowerCase().contains("authorization"), headers.out());

        String metrics = get("http://10.44.2.100:15020/metrics");
        for (String outcome : List.of("authenticated", "anonymous", "expired", "bad_signature")) {
            assertTrue(metrics.lines().anyMatch(l -> l.startsWith("waypoint_authn_requests_total{")
                    && l.contains("outcome=\"" + outcome + "\"")), "counted as " + outcome);
        }
    }

    /** A token from samples/jwt.yaml's identity provider, minted on the host as a user would. */
    static String mint(String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(
                REPO.resolve("integration-tests/meshbox/pods/mint-token.py").toString()));
        command.addAll(List.of(args));
        Result r = run(command, Duration.ofSeconds(30));
        assertEquals(0, r.exit(), r.out());
        return r.out().trim();
    }

    static String reports(String token) throws Exception {
        return curl("sleep", "-i", "http://httpbin/reports", "-H", "Authorization: Bearer " + token).out();
    }

    /**
     * External authorization (samples/ext-authz.yaml), as Istio's ext-authz task writes it: the mesh
     * configuration's provider and a CUSTOM policy on the waypoint for /private. The authorizer
     * (pods/ext-authz.py, in the mesh under STRICT, so asked through HBONE only) allows a request with
     * x-ext-authz: allow; any other gets its 403, body and header, and never reaches httpbin. Other
     * paths are not checked.
     */
    @Test
    @Order(2)
    void theExternalAuthorizerDecidesTheCustomPolicysPath() throws Exception {
        // The policy and the authorizer's endpoint arrive with the box; the first try may precede them.
        await("a request with x-ext-authz: allow reaches /private",
                () -> curl("sleep", "-i", "http://httpbin/private", "-H", "x-ext-authz: allow").out()
                        .startsWith("HTTP/1.1 200"));
        Result allowed = curl("sleep", "-i", "http://httpbin/private", "-H", "x-ext-authz: allow");
        assertTrue(allowed.out().startsWith("HTTP/1.1 200") && allowed.out().contains("hello from httpbin-v")
                && allowed.out().contains(": /private"), allowed.out());

        long seen = httpbinLogs().lines().filter(l -> l.contains("GET /private")).count();
        for (String[] denied : List.of(new String[] {}, new String[] {"-H", "x-ext-authz: deny"})) {
            List<String> args = new ArrayList<>(List.of("-i", "http://httpbin/private"));
            args.addAll(List.of(denied));
            String out = curl("sleep", args.toArray(String[]::new)).out();
            assertTrue(out.startsWith("HTTP/1.1 403"), out);
            assertTrue(out.contains("denied by ext_authz"), "the authorizer's body reaches the client:\n" + out);
            assertTrue(out.toLowerCase().contains("x-ext-authz-check-result: denied"),
                    "the authorizer's header reaches the client:\n" + out);
        }
        assertEquals(seen, httpbinLogs().lines().filter(l -> l.contains("GET /private")).count(),
                "httpbin never saw a denied request:\n" + httpbinLogs());

        // Paths the policy does not name are not sent to the authorizer.
        Result elsewhere = curl("sleep", "http://httpbin/public");
        assertTrue(elsewhere.out().startsWith("hello from httpbin-v") && elsewhere.out().contains(": /public"),
                elsewhere.out());

        String metrics = get("http://10.44.2.100:15020/metrics");
        for (String outcome : List.of("allow", "deny")) {
            assertTrue(metrics.lines().anyMatch(l -> l.startsWith("waypoint_ext_authz_checks_total{")
                    && l.contains("provider=\"sample-ext-authz-http\"") && l.contains("outcome=\"" + outcome + "\"")),
                    "counted as " + outcome + ":\n" + metrics.lines().filter(l -> l.contains("ext_authz"))
                            .collect(java.util.stream.Collectors.joining("\n")));
        }
        // The authorizer is under STRICT: the checks reached it only through HBONE, as the waypoint.
        String nodeA = get("http://127.0.0.2:15020/metrics");
        assertTrue(nodeA.lines().anyMatch(l -> l.startsWith("istio_tcp_connections_opened_total{")
                && l.contains("reporter=\"destination\"") && l.contains("destination_workload=\"ext-authz\"")
                && l.contains("source_principal=\"spiffe://cluster.local/ns/default/sa/waypoint\"")
                && l.contains("connection_security_policy=\"mutual_tls\"")),
                "node-a's ztunnel counted the waypoint's mTLS connection to the authorizer:\n" + nodeA.lines()
                        .filter(l -> l.contains("ext-authz")).collect(java.util.stream.Collectors.joining("\n")));
    }

    @Test
    @Order(3)
    void betweenThePodsOnlyMutualTlsToPort15008IsOnTheWire() throws Exception {
        // Count, on the bridge itself, what the client pod sends to node-b's pods.
        String table = "mbox_it_wire";
        nft("add", "table", "bridge", table);
        try {
            nft("add", "chain", "bridge", table, "forward_count", "{ type filter hook forward priority 0; }");
            nft("add", "rule", "bridge", table, "forward_count", "ip", "saddr", "10.44.1.10", "ip", "daddr", "10.44.2.0/24",
                    "tcp", "dport", "15008", "counter");
            nft("add", "rule", "bridge", table, "forward_count", "ip", "saddr", "10.44.1.10", "ip", "daddr", "10.44.2.0/24",
                    "tcp", "dport", "!=", "15008", "counter");
            assertTrue(reachesHttpbin("sleep"), "sleep reaches httpbin-v1 by pod IP");
            assertEquals(0, curl("sleep", "http://httpbin/").exit(), "and through the service");
            String listing = nft("list", "table", "bridge", table);
            Matcher m = Pattern.compile("counter packets (\\d+)").matcher(listing);
            assertTrue(m.find(), listing);
            long hbone = Long.parseLong(m.group(1));
            assertTrue(m.find(), listing);
            long other = Long.parseLong(m.group(1));
            assertTrue(hbone > 0, "the requests crossed the bridge as HBONE to 15008:\n" + listing);
            assertEquals(0, other, "no plaintext (nothing but 15008) between the pods:\n" + listing);
        } finally {
            nft("delete", "table", "bridge", table);
        }
        assertTrue(nodeBReportsMutualTlsFromSleep("destination_workload=\"httpbin-v1\""),
                "node-b reports the mTLS connection with identities");
    }

    /** node-b's ztunnel counted, as destination, a mutual-TLS connection from sleep to what {@code to} names. */
    static boolean nodeBReportsMutualTlsFromSleep(String to) throws Exception {
        return get("http://127.0.0.3:15020/metrics").lines().anyMatch(l -> l.startsWith("istio_tcp_connections_opened_total{")
                && l.contains("reporter=\"destination\"")
                && l.contains("source_principal=\"spiffe://cluster.local/ns/default/sa/sleep\"")
                && l.contains(to)
                && l.contains("connection_security_policy=\"mutual_tls\""));
    }

    static String nft(String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of("nft"));
        command.addAll(List.of(args));
        Result r = run(command, Duration.ofSeconds(20));
        assertEquals(0, r.exit(), String.join(" ", command) + ": " + r.out());
        return r.out();
    }

    @Test
    @Order(4)
    void anL4DenyPolicyWrittenInIstioYamlAppliesLive() throws Exception {
        Path policy = SAMPLES.resolve("deny-sleep.yaml");
        Files.writeString(policy, """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata:
                  name: httpbin-deny-sleep
                  namespace: default
                spec:
                  selector:
                    matchLabels: {app: httpbin}
                  action: DENY
                  rules:
                  - from:
                    - source:
                        principals: ["cluster.local/ns/default/sa/sleep"]
                """);
        try {
            await("sleep is denied", () -> !reachesHttpbin("sleep"));
        } finally {
            Files.delete(policy);
        }
        await("sleep is allowed again", () -> reachesHttpbin("sleep"));
    }

    @Test
    @Order(5)
    void aPodOutsideTheMeshReachesAMeshPodUnlessStrict() throws Exception {
        assertTrue(reachesHttpbin("outsider"), "plaintext from outside the mesh is accepted (PERMISSIVE)");
        Path strict = SAMPLES.resolve("strict.yaml");
        Files.writeString(strict, """
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata:
                  name: default
                  namespace: default
                spec:
                  mtls:
                    mode: STRICT
                """);
        try {
            await("outsider refused under STRICT", () -> !reachesHttpbin("outsider"));
            assertTrue(reachesHttpbin("sleep"), "mesh traffic still flows under STRICT");
        } finally {
            Files.delete(strict);
        }
        await("outsider accepted again", () -> reachesHttpbin("outsider"));
    }

    @Test
    @Order(6)
    void theAgentInstalledRulesInsideTheMeshPodsOnly() throws Exception {
        Result mesh = run(List.of(MESHBOX.toString(), "exec", "httpbin-v1", "iptables-save"), Duration.ofSeconds(20));
        assertTrue(mesh.out().contains("15001") && mesh.out().contains("15006"), "in-pod redirection:\n" + mesh.out());
        Result outside = run(List.of(MESHBOX.toString(), "exec", "outsider", "iptables-save"), Duration.ofSeconds(20));
        assertFalse(outside.out().contains("15001"), "a pod outside the mesh has no rules:\n" + outside.out());
    }

    @Test
    @Order(7)
    void aBrokenYamlFileIsReportedAndIgnored() throws Exception {
        Path broken = SAMPLES.resolve("broken.yaml");
        Files.writeString(broken, "apiVersion: v1\nkind: Service\nmetadata: {name: [oops\n");
        try {
            await("xds reports broken.yaml", () -> Files.readString(STATE.resolve("logs/xds.log")).contains("broken.yaml"));
            assertTrue(reachesHttpbin("sleep"), "the mesh keeps serving on what it knows");
            assertEquals(0, curl("sleep", "http://httpbin/").exit());
        } finally {
            Files.delete(broken);
        }
    }

    /**
     * The control plane on the wire, as anyone on the path sees it: a capture on every interface
     * (the bridge the waypoint pod talks over, and the host's loopback the node ztunnels use) while
     * node-b's ztunnel restarts (CSRs for its pods, a new discovery stream) and the waypoint pod
     * restarts: every connection to 15010 and 15012 opened meanwhile is TLS 1.3 from its first byte
     * to its last, and no token, no "Bearer", no SPIFFE id and no workload name is in clear.
     */
    @Test
    @Order(8)
    void theControlPlaneOnTheWireIsTls13WithNoTokenOrWorkloadNameInClear() throws Exception {
        Path pcap = Path.of("target", "control-plane.pcap").toAbsolutePath();
        Files.deleteIfExists(pcap);
        Process tcpdump = new ProcessBuilder("tcpdump", "-i", "any", "-U", "-s", "0", "-n", "-w", pcap.toString(),
                "tcp port 15010 or tcp port 15012").redirectErrorStream(true).start();
        try {
            var started = new java.io.BufferedReader(new java.io.InputStreamReader(tcpdump.getInputStream()));
            String line = started.readLine(); // "data link type ...", then "listening on ..."
            for (int i = 0; i < 5 && line != null && !line.contains("listening on"); i++) {
                line = started.readLine();
            }
            assertTrue(line != null && line.contains("listening on"), "tcpdump (Debian package tcpdump) capturing: " + line);
            assertEquals(0, meshbox("restart", "ztunnel-node-b").exit());
            assertEquals(0, meshbox("restart", "pod-waypoint-0").exit());
            await("ztunnel-node-b ready again", () -> ready("http://127.0.0.3:15021/healthz/ready"));
            await("the waypoint ready again", () -> ready("http://10.44.2.100:15021/healthz/ready"));
            await("traffic through the waypoint to node-b's pods flows again",
                    () -> curl("sleep", "--max-time", "3", "http://httpbin/").out().startsWith("hello from httpbin-v"));
            Thread.sleep(500);
        } finally {
            tcpdump.destroy();
            tcpdump.waitFor(10, TimeUnit.SECONDS);
        }

        TlsCapture capture = TlsCapture.read(pcap);
        long toCa = capture.streams.keySet().stream().filter(f -> f.dstPort() == 15012).count();
        long toXds = capture.streams.keySet().stream().filter(f -> f.dstPort() == 15010).count();
        assertTrue(toCa >= 2 && toXds >= 2, "connections opened to the CA (" + toCa + ") and to xds (" + toXds
                + ") by the restarted ztunnel and waypoint: " + capture.streams.keySet());
        capture.streams.forEach((flow, bytes) -> {
            boolean fromServer = flow.srcPort() == 15010 || flow.srcPort() == 15012;
            String why = TlsCapture.notTls13(bytes, fromServer);
            assertEquals(null, why, flow + " (" + bytes.length + " bytes)");
        });
        for (String secret : List.of("ztunnel-node-b-token", "ztunnel-node-a-token", "token-waypoint-0", "xds-token",
                "Bearer", "authorization", "spiffe://", "httpbin-v1", "httpbin-v2", "sleep", "outsider", "pod-name")) {
            assertFalse(capture.contains(secret), "\"" + secret + "\" crossed the network in clear (" + pcap + ")");
        }
    }

    @Test
    @Order(9)
    void theControlPlaneRefusesPlaintextAndItsDebugPagesStayOnLoopback() throws Exception {
        Result plaintextCa = curl("outsider", "--http2-prior-knowledge", "-o", "/dev/null", "http://10.44.0.20:15012/");
        assertNotEquals(0, plaintextCa.exit(), "a plaintext HTTP/2 client gets nothing from the CA: " + plaintextCa.out());
        Result plaintextXds = curl("outsider", "--http2-prior-knowledge", "-o", "/dev/null", "http://10.44.0.21:15010/");
        assertNotEquals(0, plaintextXds.exit(), "nor from xds: " + plaintextXds.out());
        Result debug = curl("outsider", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://10.44.0.21:15021/debug/connections");
        assertEquals("404", debug.out().trim(), "no debug pages on xds's pod-facing port");
        String connections = get("http://127.0.0.1:15200/debug/connections");
        assertTrue(connections.contains("service account istio-system/ztunnel (node node-b)"), connections);
        assertTrue(connections.contains("service account default/waypoint"), connections);
    }

    @Test
    @Order(10)
    void aZtunnelOrAgentRestartKeepsPodsEnrolledWithoutRestartingThem() throws Exception {
        String serverPid = Files.readString(STATE.resolve("pids/pod-httpbin-v1")).trim();
        assertEquals(0, meshbox("restart", "ztunnel-node-b").exit());
        await("ztunnel-node-b ready again", () -> ready("http://127.0.0.3:15021/healthz/ready"));
        await("traffic to node-b's pods flows again", () -> reachesHttpbin("sleep"));
        assertEquals(0, meshbox("restart", "cni-agent-node-a").exit());
        await("cni-agent-node-a ready again", () -> ready("http://127.0.0.4:15021/healthz/ready"));
        assertTrue(reachesHttpbin("sleep"), "node-a's pods still captured and served after the agent restart");
        assertEquals(serverPid, Files.readString(STATE.resolve("pids/pod-httpbin-v1")).trim(), "the pod was not re-created");
        assertTrue(ProcessHandle.of(Long.parseLong(serverPid)).map(ProcessHandle::isAlive).orElse(false));
    }

    static boolean ready(String url) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    @Test
    @Order(11)
    void aCaRestartDoesNotBreakRunningTraffic() throws Exception {
        // Requests every 50 ms from the client pod while the CA goes down and comes back.
        CompletableFuture<Result> traffic = requestsToHttpbin("sleep", 60);
        Thread.sleep(300);
        assertEquals(0, meshbox("restart", "ca").exit());
        Result r = traffic.get(2, TimeUnit.MINUTES);
        List<String> codes = r.out().lines().toList();
        assertEquals(60, codes.size(), r.out());
        assertTrue(codes.stream().allMatch("200"::equals), "every request during the CA restart succeeded: " + codes);
        await("ca ready again", () -> ready("http://10.44.0.20:15021/healthz/ready"));
    }

    /** {@code count} requests from {@code pod} to httpbin-v1, 50 ms apart, in the background: one status code a line. */
    static CompletableFuture<Result> requestsToHttpbin(String pod, int count) {
        return inBackground(List.of(MESHBOX.toString(), "exec", pod, "sh", "-c", "for i in $(seq " + count
                + "); do curl -s -o /dev/null -w '%{http_code}\\n' --max-time 3 " + HTTPBIN_V1 + "; sleep 0.05; done"));
    }

    @Test
    @Order(12)
    void everyDashboardQueryReturnsASeriesFromPrometheus() throws Exception {
        curl("sleep", "http://httpbin/?[1-20]");
        curl("sleep", "http://httpbin/admin");
        Path dashboards = REPO.resolve("k8s/observability/dashboards");
        List<String> empty = new ArrayList<>();
        int queries = 0;
        try (var files = Files.list(dashboards)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".json")).sorted().toList()) {
                for (JsonNode panel : JSON.readTree(f.toFile()).path("panels")) {
                    for (JsonNode target : panel.path("targets")) {
                        String expr = target.path("expr").asText().replace("$__rate_interval", "1m");
                        queries++;
                        if (!returnsSeries(expr)) {
                            empty.add(f.getFileName() + " / " + panel.path("title").asText() + ": " + expr);
                        }
                    }
                }
            }
        }
        assertTrue(queries >= 15, "the dashboards hold queries: " + queries);
        assertTrue(empty.isEmpty(), "queries without data:\n" + String.join("\n", empty));
    }

    /** Polls Prometheus for up to 30 s: the series appear within a few 2 s scrapes. */
    static boolean returnsSeries(String expr) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            JsonNode body = JSON.readTree(get(PROMETHEUS + "/api/v1/query?query=" + URLEncoder.encode(expr, StandardCharsets.UTF_8)));
            assertEquals("success", body.path("status").asText(), expr + ": " + body);
            if (!body.path("data").path("result").isEmpty()) {
                return true;
            }
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(1000);
        }
    }

    /**
     * The box's pods come from the watched directory: a Pod dropped in (a user's app, with the host
     * command the box runs for its container) becomes a network-namespace pod on its node, enrolled
     * by the CNI plugin, served in-pod by node-b's ztunnel under its own identity and reached over
     * HBONE; a Deployment's replica gets a node and an address; a pod the box cannot run is one
     * line in the reconciler's log. Removing the file stops the pods, CNI DELs them and deletes their
     * namespaces, and the ztunnel lets them go.
     */
    @Test
    @Order(13)
    void aPodDroppedIntoTheWatchedDirectoryJoinsTheMeshAndLeavesWithItsYaml() throws Exception {
        Path app = SAMPLES.resolve("my-app.yaml");
        Files.writeString(app, """
                apiVersion: v1
                kind: Pod
                metadata:
                  name: hello
                  namespace: default
                  labels: {app: hello}
                  annotations: {meshbox.ambient.dev/command: pods/httpbin.py 8080}
                spec:
                  nodeName: node-b
                  serviceAccountName: hello
                  containers: [{name: hello, image: hello, readinessProbe: {httpGet: {path: /, port: 8080}}}]
                status:
                  phase: Running
                  podIP: 10.44.2.50
                  conditions: [{type: Ready, status: "True"}]
                ---
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: hi, namespace: default}
                spec:
                  replicas: 1
                  selector: {matchLabels: {app: hi}}
                  template:
                    metadata:
                      labels: {app: hi}
                      annotations: {meshbox.ambient.dev/command: pods/httpbin.py 8080}
                    spec:
                      serviceAccountName: hi
                      containers: [{name: hi, image: hi}]
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: nginx, namespace: default}
                spec:
                  nodeName: node-a
                  containers: [{name: nginx, image: nginx}]
                status: {phase: Running, podIP: 10.44.1.77}
                """);
        long pid;
        try {
            await("hello answers sleep through the mesh",
                    () -> curl("sleep", "--max-time", "3", "http://10.44.2.50:8080/").out().equals("hello from hello\n"));
            await("the Deployment's replica (node-a, the first free address) answers",
                    () -> curl("sleep", "--max-time", "3", "http://10.44.1.200:8080/").out().equals("hello from hi-0\n"));
            assertTrue(inpodWorkloads().contains("hello RUNNING spiffe://cluster.local/ns/default/sa/hello"),
                    "node-b's ztunnel serves hello in its pod: " + inpodWorkloads());
            assertTrue(nodeBReportsMutualTlsFromSleep("destination_principal=\"spiffe://cluster.local/ns/default/sa/hello\""),
                    "sleep -> hello arrived over HBONE");
            Result rules = run(List.of(MESHBOX.toString(), "exec", "hello", "iptables-save"), Duration.ofSeconds(20));
            assertTrue(rules.out().contains("15006"), "enrolled by the CNI plugin:\n" + rules.out());
            assertTrue(Files.readString(STATE.resolve("logs/reconciler.log"))
                    .contains("pod default/nginx not run: cannot run container nginx"), "one line for what the box cannot run");
            assertFalse(netns().contains("mbox-nginx"), "and no pod for it");
            pid = pid("pod-hello");
        } finally {
            Files.delete(app);
        }
        await("the pods are deleted", () -> !netns().contains("mbox-hello") && !netns().contains("mbox-hi-0"));
        assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "hello's program stopped");
        assertFalse(Files.exists(Path.of("/etc/netns/mbox-hello")), "its /etc/netns entry removed");
        await("node-b's ztunnel let hello go", () -> !inpodWorkloads().contains("hello RUNNING"));
        assertNotEquals(0, curl("sleep", "--max-time", "3", "http://10.44.2.50:8080/").exit(), "hello is gone");
        assertTrue(reachesHttpbin("sleep"), "the sample pods were left alone");
    }

    /** node-b's ztunnel's in-pod workloads, from its config dump: "name state identity" a line. */
    static String inpodWorkloads() throws Exception {
        StringBuilder out = new StringBuilder();
        for (JsonNode w : JSON.readTree(get("http://127.0.0.1:15100/config_dump")).path("inpod").path("workloads")) {
            out.append(w.path("name").asText()).append(' ').append(w.path("state").asText()).append(' ')
                    .append(w.path("identity").asText()).append('\n');
        }
        return out.toString();
    }

    static String netns() throws Exception {
        return run(List.of("ip", "netns", "list"), Duration.ofSeconds(10)).out();
    }

    /**
     * Issue 12: one plaintext connection from the pod outside the mesh to an enrolled pod's 15006 made
     * node-b's ztunnel dial itself in a loop until it ran out of file descriptors. Now every connection
     * naming a ztunnel port is refused with a reason in the log: from the outsider (15006, 15001), from
     * a mesh pod through its tunnel (node-b answers the CONNECT with 400), and to a pod's own loopback
     * 15001. Both ztunnels' descriptors stay flat, and sleep's requests to httpbin keep working meanwhile.
     */
    /**
     * The outside world's dnsmasq (the box's upstream resolver) stopped: sleep's ztunnel still
     * answers the names it knows itself (a Kubernetes service, the ServiceEntry host) while a name
     * only the resolver knows fails; once the resolver runs again, that name resolves again. Each
     * external name is new (a subdomain of api.example.com, which dnsmasq answers with the outside
     * pod's address), so no answer comes from the ztunnel's cache.
     */
    @Test
    @Order(14)
    void dnsKeepsAnsweringForKnownNamesWhileTheUpstreamResolverIsDown() throws Exception {
        String external = "t" + System.nanoTime() + ".api.example.com";
        Result before = dig("before-" + external);
        assertEquals("NOERROR", dnsStatus(before), before.out());
        assertEquals(List.of(OUTSIDE_IP), dnsAddresses(before), "the resolver answers it through the proxy: " + before.out());

        long resolver = pid("pod-outside-dns");
        try {
            ProcessHandle dnsmasq = ProcessHandle.of(resolver).orElseThrow();
            dnsmasq.destroy();
            dnsmasq.onExit().get(10, TimeUnit.SECONDS);

            Result service = dig("httpbin.default.svc.cluster.local");
            assertEquals("NOERROR", dnsStatus(service), service.out());
            assertEquals(1, dnsAddresses(service).size(), "the service's cluster IP: " + service.out());
            Result entry = dig("api.example.com");
            assertEquals("NOERROR", dnsStatus(entry), entry.out());
            assertTrue(dnsAddresses(entry).size() == 1 && dnsAddresses(entry).getFirst().startsWith("240.240."),
                    "the ServiceEntry's auto-allocated address: " + entry.out());
            Result unknown = dig("during-" + external);
            assertTrue(dnsAddresses(unknown).isEmpty(), "nobody could answer it: " + unknown.out());
            assertTrue("SERVFAIL".equals(dnsStatus(unknown)) || unknown.exit() != 0,
                    "SERVFAIL or no answer (a timeout): " + unknown.out());
        } finally {
            assertEquals(0, meshbox("restart", "pod-outside-dns").exit());
        }
        await("the resolver answers again", () -> dnsAddresses(dig("after-" + System.nanoTime() + "-" + external))
                .equals(List.of(OUTSIDE_IP)));
        assertTrue(dnsAddresses(dig("api.example.com")).getFirst().startsWith("240.240."));
    }

    static final String OUTSIDE_IP = "10.44.200.10";

    /** dig in the sleep pod, through its resolv.conf (the outside resolver, captured by the ztunnel). */
    static Result dig(String name) throws Exception {
        return run(List.of(MESHBOX.toString(), "exec", "sleep", "dig", "+time=4", "+tries=1", "+noall", "+comments",
                "+answer", name, "A"), Duration.ofSeconds(30));
    }

    static String dnsStatus(Result dig) {
        Matcher m = Pattern.compile("status: (\\w+)").matcher(dig.out());
        return m.find() ? m.group(1) : "none";
    }

    static List<String> dnsAddresses(Result dig) {
        return dig.out().lines().filter(l -> !l.startsWith(";")).map(l -> l.trim().split("\\s+"))
                .filter(f -> f.length == 5 && f[3].equals("A")).map(f -> f[4]).toList();
    }

    /**
     * REGISTRY_ONLY (svc-ztunnel's {@code ztunnel.outbound-traffic-policy}) on node-a's ztunnel, set
     * as a user would: restarted with the key in its environment. Sleep's connection to an address
     * that is no workload, service or ServiceEntry (Prometheus on the host's bridge, which sleep
     * reaches under the default ALLOW_ANY) is refused, with the reason in the access log; the
     * ServiceEntry's api.example.com and the mesh's httpbin still work. Then the default again.
     */
    @Test
    @Order(15)
    void registryOnlyRefusesAnUnlistedAddressButNotTheServiceEntry() throws Exception {
        String unlisted = PROMETHEUS + "/-/healthy";
        String ztunnelReady = "http://127.0.0.2:15021/healthz/ready";
        Path accessLog = STATE.resolve("logs/ztunnel-node-a.log");
        assertEquals("200", curl("sleep", "-o", "/dev/null", "-w", "%{http_code}", unlisted).out(),
                "ALLOW_ANY, the default, lets sleep reach it");
        try {
            assertEquals(0, run(List.of(MESHBOX.toString(), "restart", "ztunnel-node-a"), Duration.ofMinutes(2),
                    Map.of("ZTUNNEL_OUTBOUND_TRAFFIC_POLICY", "REGISTRY_ONLY")).exit());
            await("ztunnel-node-a ready with REGISTRY_ONLY", () -> ready(ztunnelReady));
            await("sleep reaches httpbin, a mesh service", () -> reachesHttpbin("sleep"));
            long logStart = Files.size(accessLog);

            Result refused = curl("sleep", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", unlisted);
            assertNotEquals(0, refused.exit(), "refused: " + refused.out());
            assertFalse(refused.out().startsWith("200"), refused.out());
            Result declared = curl("sleep", "http://api.example.com/get");
            assertTrue(declared.out().startsWith("outside https api.example.com /get"),
                    "the ServiceEntry's host is in the registry: " + declared.out());
            await("the refusal in node-a's access log", () -> {
                byte[] log = Files.readAllBytes(accessLog);
                String added = new String(log, (int) logStart, log.length - (int) logStart, StandardCharsets.UTF_8);
                return added.lines().anyMatch(l -> l.contains("dst=10.44.0.30:9090") && l.contains("outcome=refused")
                        && l.contains("REGISTRY_ONLY"));
            });
        } finally {
            assertEquals(0, meshbox("restart", "ztunnel-node-a").exit());
            await("ztunnel-node-a ready with the default", () -> ready(ztunnelReady));
        }
        await("ALLOW_ANY again", () -> "200".equals(curl("sleep", "--max-time", "3", "-o", "/dev/null", "-w",
                "%{http_code}", unlisted).out()));
        assertTrue(reachesHttpbin("sleep"));
    }

    /**
     * samples/dual-stack.yaml: sleep (node-a, fd00:44:1::10) reaches echo6 (node-b, fd00:44:2::60)
     * by its IPv6 address through both ztunnels over HBONE, and echo6's IPv6 ipBlocks ALLOW lets
     * only sleep's IPv6 address in: client6 (node-a, fd00:44:1::61) is refused.
     */
    @Test
    @Order(16)
    void aDualStackPodReachesAPodOnTheOtherNodeOverIpv6AndAnIpv6IpBlockDecides() throws Exception {
        String path = "/ipv6-" + System.nanoTime();
        Result r = curl("sleep", "-g", "http://[fd00:44:2::60]:8080" + path);
        assertTrue(r.out().startsWith("hello from echo6"), r.out());
        Path echoLog = STATE.resolve("logs/pod-echo6.log");
        await("echo6's log line for " + path, () -> Files.readString(echoLog).contains(path));
        String line = Files.readString(echoLog).lines().filter(l -> l.contains(path)).findFirst().orElseThrow();
        assertTrue(line.startsWith("fd00:44:1::10 "), "echo6 saw sleep's IPv6 address: " + line);
        // node-b's ztunnel took it in over HBONE, from sleep's IPv6 address and identity.
        Path ztunnelB = STATE.resolve("logs/ztunnel-node-b.log");
        await("node-b's access log of sleep's IPv6 connection", () -> Files.readString(ztunnelB).lines().anyMatch(l ->
                l.contains("src=[fd00:44:1::10]:") && l.contains("dst=[fd00:44:2::60]:8080")
                        && l.contains("src_identity=spiffe://cluster.local/ns/default/sa/sleep") && l.contains("via=hbone")));
        String metrics = get("http://127.0.0.3:15020/metrics");
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("istio_tcp_connections_opened_total{")
                && l.contains("destination_workload=\"echo6\"") && l.contains("source_workload=\"sleep\"")
                && l.contains("connection_security_policy=\"mutual_tls\"") && !l.endsWith(" 0.0")),
                "node-b's metrics:\n" + metrics);

        // client6 has a mesh identity too, but its IPv6 address is not in the ipBlocks.
        Result denied = curl("client6", "-g", "http://[fd00:44:2::60]:8080/");
        assertFalse(denied.out().contains("hello from echo6"), denied.out());
        await("node-b's access log of client6's refused connection", () -> Files.readString(ztunnelB).lines().anyMatch(l ->
                l.contains("src=[fd00:44:1::61]:") && l.contains("dst=[fd00:44:2::60]:8080") && !l.contains("outcome=success")));
        // and sleep still gets through after it
        assertTrue(curl("sleep", "-g", "http://[fd00:44:2::60]:8080/").out().startsWith("hello from echo6"));
    }

    @Test
    @Order(20)
    void noConnectionMakesAZtunnelDialItself() throws Exception {
        long ztunnelA = pid("ztunnel-node-a");
        long ztunnelB = pid("ztunnel-node-b");
        long beforeA = openFiles(ztunnelA);
        long beforeB = openFiles(ztunnelB);
        long[] peak = {beforeA, beforeB};
        CompletableFuture<Result> good = requestsToHttpbin("sleep", 40);
        Thread sampler = Thread.ofPlatform().daemon().start(() -> {
            while (!good.isDone()) {
                peak[0] = Math.max(peak[0], openFiles(ztunnelA));
                peak[1] = Math.max(peak[1], openFiles(ztunnelB));
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        List<String> attacks = List.of(
                "outsider http://10.44.2.11:15006/", "outsider http://10.44.2.11:15001/",
                "sleep http://10.44.2.11:15006/", "sleep http://10.44.2.11:15001/", "sleep http://10.44.2.11:15008/",
                "sleep http://127.0.0.1:15001/");
        long t0 = System.nanoTime();
        for (String attack : attacks) {
            String[] podAndUrl = attack.split(" ");
            Result r = curl(podAndUrl[0], "--max-time", "3", podAndUrl[1]);
            assertNotEquals(0, r.exit(), attack + " must be refused: " + r.out());
            assertFalse(r.out().contains("hello from httpbin"), attack + ": " + r.out());
            assertFalse(r.out().contains("timed out"), attack + " refused at once, not left hanging: " + r.out());
        }
        long attackMillis = (System.nanoTime() - t0) / 1_000_000;
        Result goodRun = good.get(2, TimeUnit.MINUTES);
        sampler.join(1_000);
        List<String> codes = goodRun.out().lines().toList();
        long afterA = openFiles(ztunnelA);
        long afterB = openFiles(ztunnelB);
        System.out.printf("self-target attacks (%d connections in %d ms): ztunnel-node-a fds %d -> peak %d -> %d,"
                + " ztunnel-node-b fds %d -> peak %d -> %d; sleep->httpbin meanwhile: %d of %d requests 200%n",
                attacks.size(), attackMillis, beforeA, peak[0], afterA, beforeB, peak[1], afterB,
                codes.stream().filter("200"::equals).count(), codes.size());
        assertTrue(peak[1] - beforeB < 100 && afterB - beforeB < 50, "node-b's descriptors stay flat: " + beforeB
                + " -> peak " + peak[1] + " -> " + afterB);
        assertTrue(peak[0] - beforeA < 100 && afterA - beforeA < 50, "node-a's descriptors stay flat: " + beforeA
                + " -> peak " + peak[0] + " -> " + afterA);
        assertEquals(40, codes.size(), goodRun.out());
        assertTrue(codes.stream().allMatch("200"::equals), "sleep->httpbin kept working: " + codes);

        String logB = Files.readString(STATE.resolve("logs/ztunnel-node-b.log"));
        for (String listener : List.of("inbound plaintext", "outbound capture", "HBONE")) {
            assertTrue(logB.contains("is this ztunnel's own " + listener + " listener"),
                    "node-b logs the refusal of its own " + listener + " port");
        }
        assertTrue(logB.contains("refused 400"), "the tunnelled CONNECTs were answered 400");
        assertTrue(Files.readString(STATE.resolve("logs/ztunnel-node-a.log"))
                .contains("dst=127.0.0.1:15001"), "node-a logs sleep's connection to its own 15001");
        assertTrue(reachesHttpbin("outsider"), "the outsider still reaches httpbin the normal way");
    }

    static long pid(String process) throws IOException {
        return Long.parseLong(Files.readString(STATE.resolve("pids/" + process)).trim());
    }

    /** A process's open file descriptors, as the kernel counts them. */
    static long openFiles(long pid) {
        try (var fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return fds.count();
        } catch (IOException e) {
            return -1;
        }
    }

    /**
     * Issue 18: {@code meshbox upgrade ztunnel-node-a} runs a second ztunnel for node-a beside the
     * first (in-pod hand-over over ZDS); the old one drains and exits. Meanwhile sleep (node-a) sends
     * a request on a new connection after another to a pod of node-a and to one of node-b, and holds
     * one streaming response from each, shorter than the drain deadline: no request fails, both
     * streams arrive whole, the new process serves (its own metrics count the connections), the old
     * one is gone and the box's bookkeeping names the new one. Last before down: node-a's ztunnel then
     * answers on its second addresses.
     */
    @Test
    @Order(30)
    void aZtunnelUpgradeRefusesNoRequestAndKeepsTheStream() throws Exception {
        Path app = SAMPLES.resolve("upgrade-echo.yaml");
        Files.writeString(app, """
                apiVersion: v1
                kind: Pod
                metadata:
                  name: echo-a
                  namespace: default
                  annotations: {meshbox.ambient.dev/command: pods/httpbin.py 8080}
                spec:
                  nodeName: node-a
                  serviceAccountName: echo
                  containers: [{name: echo, image: echo, readinessProbe: {httpGet: {path: /, port: 8080}}}]
                status:
                  phase: Running
                  podIP: 10.44.1.41
                  conditions: [{type: Ready, status: "True"}]
                """);
        String nodeA = "http://10.44.1.41:8080/";
        await("echo-a (node-a) answers sleep through the mesh",
                () -> curl("sleep", "--max-time", "3", nodeA).out().equals("hello from echo-a\n"));
        long oldPid = pid("ztunnel-node-a");
        Path stop = STATE.resolve("upgrade-loop.stop");
        Files.deleteIfExists(stop);

        CompletableFuture<Result> loopA = requestLoop("sleep", nodeA, stop);
        CompletableFuture<Result> loopB = requestLoop("sleep", HTTPBIN_V1, stop);
        // Streams of 25 s: started before the new ztunnel exists, they outlast its start and end within
        // the old one's 30 s drain (the box's ztunnel.inpod.drain-timeout).
        CompletableFuture<Result> streamA = stream("sleep", nodeA + "stream/25");
        CompletableFuture<Result> streamB = stream("sleep", HTTPBIN_V1 + "stream/25");
        Thread.sleep(2_000);
        long started = System.nanoTime();
        Result upgrade = meshbox("upgrade", "ztunnel-node-a");
        long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
        Thread.sleep(2_000);   // the loops carry on a little after the old process left
        Files.writeString(stop, "");
        List<String> codesA = loopA.get(2, TimeUnit.MINUTES).out().lines().toList();
        List<String> codesB = loopB.get(2, TimeUnit.MINUTES).out().lines().toList();
        Result a = streamA.get(2, TimeUnit.MINUTES);
        Result b = streamB.get(2, TimeUnit.MINUTES);
        Files.delete(app);
        String failures = "requests failed to node-a " + codesA.stream().filter(c -> !"200".equals(c)).count() + "/"
                + codesA.size() + ", to node-b " + codesB.stream().filter(c -> !"200".equals(c)).count() + "/"
                + codesB.size() + "; the command took " + tookMs + " ms";
        System.out.println("upgrade of ztunnel-node-a under load: " + failures);

        assertEquals(0, upgrade.exit(), "meshbox upgrade ztunnel-node-a (" + failures + "):\n" + upgrade.out());
        assertTrue(codesA.size() >= 20 && codesB.size() >= 20, "the loops ran all along: " + failures);
        assertStreamWhole(a, "echo-a");
        assertStreamWhole(b, "httpbin-v1");
        assertFalse(ProcessHandle.of(oldPid).map(ProcessHandle::isAlive).orElse(false), "the old ztunnel exited");
        long newPid = pid("ztunnel-node-a");
        assertNotEquals(oldPid, newPid, "the box's pid file names the new ztunnel");
        assertTrue(ProcessHandle.of(newPid).map(ProcessHandle::isAlive).orElse(false), "the new ztunnel runs");
        assertTrue(meshbox("status").out().contains("ztunnel-node-a: running"));
        // node-a's second addresses (meshbox's nodes): metrics on 127.0.0.12, admin on 127.0.0.1:15050.
        assertTrue(ready("http://127.0.0.12:15021/healthz/ready"), "the new ztunnel is ready");
        String metrics = get("http://127.0.0.12:15020/metrics");
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("ztunnel_inpod_handovers_total{") && l.contains("role=\"new\"")
                && !l.endsWith(" 0.0")), "it took the pods over from the old one:\n" + metrics);
        double opened = metrics.lines().filter(l -> l.startsWith("istio_tcp_connections_opened_total{"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
        assertTrue(opened >= 10, "the new ztunnel carried the loops' new connections (" + opened + ")");
        assertTrue(get("http://127.0.0.1:15050/config_dump").contains("\"sleep\""), "its admin port serves node-a's pods");
        Files.deleteIfExists(stop);
        await("echo-a deleted", () -> !netns().contains("mbox-echo-a"));
        assertTrue(reachesHttpbin("sleep"), "sleep still reaches httpbin after the upgrade");
        // Last, so that a failed request does not hide whether the rest of the hand-over held.
        assertTrue(codesA.stream().allMatch("200"::equals) && codesB.stream().allMatch("200"::equals), failures
                + "\nnode-a: " + codesA + "\nnode-b: " + codesB);
    }

    /** From {@code pod}, one request after another to {@code url}, each on a new connection, until {@code stop} exists: a status code a line. */
    static CompletableFuture<Result> requestLoop(String pod, String url, Path stop) {
        return inBackground(List.of(MESHBOX.toString(), "exec", pod, "sh", "-c", "while [ ! -e " + stop
                + " ]; do curl -s -o /dev/null -w '%{http_code}\\n' --max-time 5 " + url + "; sleep 0.1; done"));
    }

    /** From {@code pod}, one long response (pods/httpbin.py's /stream/N: a line a second). */
    static CompletableFuture<Result> stream(String pod, String url) {
        return inBackground(List.of(MESHBOX.toString(), "exec", pod, "curl", "-sS", "--max-time", "60", url));
    }

    /** On a thread of its own: the common pool has one thread on two cores, and these must run at once. */
    static CompletableFuture<Result> inBackground(List<String> command) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return run(command, Duration.ofSeconds(150));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }, r -> Thread.ofPlatform().daemon().start(r));
    }

    static void assertStreamWhole(Result stream, String pod) {
        List<String> lines = stream.out().lines().toList();
        assertEquals(0, stream.exit(), "the stream from " + pod + " ended cleanly: " + stream.out());
        assertEquals(25, lines.size(), stream.out());
        assertEquals(pod + " line 000025", lines.getLast(), stream.out());
    }

    @Test
    @Order(99)
    void downLeavesNothingBehind() throws Exception {
        keepLogs();
        List<Long> pids = new ArrayList<>();
        try (var files = Files.list(STATE.resolve("pids"))) {
            for (Path f : files.toList()) {
                pids.add(Long.parseLong(Files.readString(f).trim()));
            }
        }
        assertEquals(0, meshbox("down").exit());
        assertFalse(Files.exists(STATE), "state directory removed");
        for (long pid : pids) {
            assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "process " + pid + " stopped");
        }
        Result netns = run(List.of("ip", "netns", "list"), Duration.ofSeconds(10));
        assertFalse(netns.out().contains("mbox-"), "pod namespaces removed: " + netns.out());
        assertNotEquals(0, run(List.of("ip", "link", "show", "mbox0"), Duration.ofSeconds(10)).exit(), "bridge removed");
        try (var etc = Files.list(Path.of("/etc/netns"))) {
            assertTrue(etc.noneMatch(p -> p.getFileName().toString().startsWith("mbox-")), "/etc/netns entries removed");
        } catch (java.nio.file.NoSuchFileException none) {
            // nothing was ever there
        }
    }
}
