package dev.ambient.ztunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.ambient.ztunnel.config.ZtunnelConfig;
import java.io.IOException;
import java.io.StringReader;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What a user applying {@code kubectl apply -k k8s/} relies on: the kustomize tree renders, every object lands in
 * istio-system, and the ztunnel DaemonSet has the ports, probes, capabilities, scrape annotations, environment and
 * configuration the ztunnel expects.
 *
 * <p>No schema validator works offline here (kubeconform/kubeval are neither in Debian nor on npm, and
 * {@code kubectl create/apply --dry-run=client} needs an API server for discovery), so the rendered YAML is parsed
 * and checked field by field. Skipped when kubectl is not installed.
 */
class K8sManifestsTest {

    static final String NAMESPACE = "istio-system";
    static final Set<String> CLUSTER_SCOPED = Set.of("Namespace", "ClusterRole", "ClusterRoleBinding",
            "CustomResourceDefinition", "PriorityClass", "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration");

    static List<JsonNode> docs;

    @BeforeAll
    static void render() throws Exception {
        Optional<Path> kubectl = onPath("kubectl");
        Assumptions.assumeTrue(kubectl.isPresent(), "kubectl is not installed: k8s/ manifests not checked");
        Path k8s = repoRoot().resolve("k8s");

        Process p = new ProcessBuilder(kubectl.get().toString(), "kustomize", k8s.toString())
                .redirectErrorStream(false).start();
        p.getOutputStream().close();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("kubectl kustomize " + k8s + " did not finish in 120 s");
        }
        assertEquals(0, p.exitValue(), () -> "kubectl kustomize " + k8s + " failed:\n" + err.join());

        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        docs = new ArrayList<>();
        try (var it = yaml.readerFor(JsonNode.class).<JsonNode>readValues(out.get())) {
            while (it.hasNext()) {
                JsonNode doc = it.next();
                if (doc != null && !doc.isNull() && !doc.isEmpty()) {
                    docs.add(doc);
                }
            }
        }
        assertFalse(docs.isEmpty(), "kubectl kustomize rendered nothing");
    }

    @Test
    void everyDocumentIsAnIdentifiableObjectOfTheMesh() {
        Set<String> seen = new HashSet<>();
        for (JsonNode d : docs) {
            assertTrue(d.path("apiVersion").isTextual(), () -> "no apiVersion: " + d);
            assertTrue(d.path("kind").isTextual(), () -> "no kind: " + d);
            String name = d.at("/metadata/name").asText("");
            assertFalse(name.isEmpty(), () -> "no metadata.name: " + d);
            assertTrue(seen.add(d.get("kind").asText() + "/" + name), () -> "rendered twice: " + id(d));
            assertEquals("ambient-mesh", d.at("/metadata/labels/app.kubernetes.io~1part-of").asText(),
                    () -> id(d) + " lacks the app.kubernetes.io/part-of label");
        }
    }

    @Test
    void everythingLandsInIstioSystem() {
        assertEquals(1, ofKind("Namespace").size(), "one Namespace object");
        assertEquals(NAMESPACE, ofKind("Namespace").getFirst().at("/metadata/name").asText());
        for (JsonNode d : docs) {
            if (CLUSTER_SCOPED.contains(d.get("kind").asText())) {
                assertTrue(d.at("/metadata/namespace").isMissingNode(), () -> id(d) + " is cluster-scoped");
            } else {
                assertEquals(NAMESPACE, d.at("/metadata/namespace").asText(), () -> id(d) + " namespace");
            }
        }
    }

    @Test
    void ztunnelIsADaemonSetOnEveryNodeInItsOwnNetworkNamespace() {
        JsonNode ds = ztunnel();
        JsonNode pod = ds.at("/spec/template/spec");
        assertFalse(pod.path("hostNetwork").asBoolean(false), "hostNetwork must be false (in-pod mode)");
        assertEquals("system-node-critical", pod.path("priorityClassName").asText());
        // Longer than the hand-over drain (ztunnel.inpod.drain-timeout, 25 s), which it lets finish.
        assertEquals(35, pod.path("terminationGracePeriodSeconds").asInt());
        assertTrue(stream(pod.path("tolerations")).anyMatch(t -> "Exists".equals(t.path("operator").asText())
                && t.path("key").isMissingNode() && t.path("effect").isMissingNode()),
                "a toleration of every taint (operator: Exists, no key, no effect)");
        assertEquals("RollingUpdate", ds.at("/spec/updateStrategy/type").asText());
        // A hand-over needs the new pod beside the old one: surge, never a node without a ztunnel.
        assertEquals(1, ds.at("/spec/updateStrategy/rollingUpdate/maxSurge").asInt());
        assertEquals(0, ds.at("/spec/updateStrategy/rollingUpdate/maxUnavailable").asInt(-1));

        JsonNode selector = ds.at("/spec/selector/matchLabels");
        assertFalse(selector.isEmpty(), "selector");
        selector.properties().forEach(e -> assertEquals(e.getValue().asText(),
                ds.at("/spec/template/metadata/labels").path(e.getKey()).asText(),
                "the pod template carries selector label " + e.getKey()));
        assertEquals("ambient-mesh/ztunnel:0.1.0", container().path("image").asText());
    }

    @Test
    void portsAndProbesAreTheOnesZtunnelServes() {
        JsonNode c = container();
        Map<String, Integer> ports = new java.util.HashMap<>();
        Map<Integer, String> byNumber = new java.util.HashMap<>();
        for (JsonNode p : c.path("ports")) {
            ports.put(p.path("name").asText(), p.path("containerPort").asInt());
            byNumber.put(p.path("containerPort").asInt(), p.path("name").asText());
        }
        for (int port : new int[] {15008, 15001, 15006, 15020, 15021}) {
            assertTrue(byNumber.containsKey(port), "container port " + port);
        }
        assertEquals(15008, ports.get("hbone"));
        assertEquals(15020, ports.get("http-monitoring"), "Istio's metrics port name");
        ports.keySet().forEach(n -> assertTrue(n.length() <= 15 && n.matches("[a-z0-9]([-a-z0-9]*[a-z0-9])?"),
                "port name " + n + " must be an IANA service name"));

        assertProbe(c.path("readinessProbe"), "/healthz/ready", ports);
        assertProbe(c.path("livenessProbe"), "/healthz/live", ports);
    }

    @Test
    void onlyNetAdminAndSysAdminAreGranted() {
        JsonNode sc = container().path("securityContext");
        assertEquals(Set.of("NET_ADMIN", "SYS_ADMIN"), texts(sc.at("/capabilities/add")), "capabilities.add");
        assertEquals(Set.of("ALL"), texts(sc.at("/capabilities/drop")), "capabilities.drop");
        assertFalse(sc.path("privileged").asBoolean(true), "privileged must be false (and explicit)");
        assertFalse(sc.path("allowPrivilegeEscalation").asBoolean(true), "allowPrivilegeEscalation: false");
        assertEquals(0, sc.path("runAsUser").asInt(-1), "runAsUser 0: setns needs effective capabilities");
        assertTrue(ztunnel().at("/spec/template/spec/securityContext/privileged").isMissingNode());
    }

    @Test
    void prometheusScrapesTheMetricsPort() {
        JsonNode a = ztunnel().at("/spec/template/metadata/annotations");
        assertEquals("true", a.path("prometheus.io/scrape").asText());
        assertEquals("15020", a.path("prometheus.io/port").asText());
        assertEquals("/metrics", a.path("prometheus.io/path").asText());
    }

    @Test
    void environmentTellsZtunnelItsNodeAndJvmFlags() {
        JsonNode env = container().path("env");
        assertEquals("spec.nodeName", fieldRef(env, "ZTUNNEL_NODE_NAME"), "ztunnel.node-name from the node");
        assertEquals("status.hostIP", fieldRef(env, "ZTUNNEL_NODE_IP"));
        assertEquals("metadata.namespace", fieldRef(env, "POD_NAMESPACE"));
        String javaOpts = value(env, "JAVA_OPTS");
        assertTrue(javaOpts.contains("-XX:MaxRAMPercentage=40"), javaOpts);
        assertTrue(javaOpts.contains("--enable-native-access=ALL-UNNAMED"), javaOpts);
        assertEquals("2", value(env, "MALLOC_ARENA_MAX"), "two glibc arenas, not one per thread");
        assertEquals("-Xmn8m -XX:MinHeapFreeRatio=20 -XX:MaxHeapFreeRatio=40 -Dio.netty.allocator.maxCachedBufferCapacity=262144",
                value(env, "JDK_JAVA_OPTIONS"),
                "the ztunnel's own sizing: a fixed young generation, an old one 20-40% free after a full GC,"
                        + " and Netty's thread caches holding the data plane's 64-256 KiB buffers");

        JsonNode resources = container().path("resources");
        assertEquals("200m", resources.at("/requests/cpu").asText());
        assertEquals("192Mi", resources.at("/requests/memory").asText());
        assertEquals("512Mi", resources.at("/limits/memory").asText());
    }

    @Test
    void volumesAndReferencesResolve() {
        JsonNode pod = ztunnel().at("/spec/template/spec");
        Map<String, JsonNode> volumes = new java.util.HashMap<>();
        pod.path("volumes").forEach(v -> volumes.put(v.path("name").asText(), v));
        for (JsonNode m : container().path("volumeMounts")) {
            assertTrue(volumes.containsKey(m.path("name").asText()), "mount of an undeclared volume: " + m);
        }
        JsonNode zds = volumes.get("cni-ztunnel-sock-dir");
        assertNotNull(zds, "ZDS socket volume");
        assertEquals("/var/run/ztunnel", zds.at("/hostPath/path").asText());
        assertEquals("DirectoryOrCreate", zds.at("/hostPath/type").asText());
        assertTrue(stream(container().path("volumeMounts"))
                .anyMatch(m -> "/var/run/ztunnel".equals(m.path("mountPath").asText())), "ZDS dir mounted");

        String sa = pod.path("serviceAccountName").asText();
        assertTrue(ofKind("ServiceAccount").stream().anyMatch(d -> sa.equals(d.at("/metadata/name").asText())),
                "service account " + sa + " is rendered");
        volumes.values().stream().filter(v -> v.has("configMap")).forEach(v -> {
            String cm = v.at("/configMap/name").asText();
            // the trust bundle is published by svc-ca at run time, in every namespace of the mesh
            assertTrue(ROOT_CONFIG_MAP.equals(cm)
                    || ofKind("ConfigMap").stream().anyMatch(d -> cm.equals(d.at("/metadata/name").asText())),
                    "ConfigMap " + cm + " is rendered");
        });
    }

    static final String ROOT_CONFIG_MAP = "istio-ca-root-cert";

    /**
     * Every client of the control plane (ztunnel, xds as svc-ca's client, the waypoint template)
     * mounts the mesh root svc-ca publishes where the root-cert-file keys point, and a projected
     * token for the audience svc-ca and svc-xds require; svc-xds may check tokens.
     */
    @Test
    void controlPlaneClientsMountTheRootAndATokenForOurAudience() throws IOException {
        List<JsonNode> pods = new java.util.ArrayList<>(List.of(ztunnel().at("/spec/template/spec")));
        ofKind("Deployment").stream().filter(d -> "xds".equals(d.at("/metadata/name").asText()))
                .forEach(d -> pods.add(d.at("/spec/template/spec")));
        JsonNode waypoint;
        try (var it = new ObjectMapper(new YAMLFactory()).readerFor(JsonNode.class).<JsonNode>readValues(
                repoRoot().resolve("k8s/waypoint/template.yaml").toFile())) {
            waypoint = it.readAll().stream().filter(d -> d != null && "Deployment".equals(d.path("kind").asText()))
                    .findFirst().orElseThrow();
        }
        pods.add(waypoint.at("/spec/template/spec"));
        assertEquals(3, pods.size(), "ztunnel, xds and the waypoint template");
        for (JsonNode pod : pods) {
            Map<String, JsonNode> volumes = new java.util.HashMap<>();
            pod.path("volumes").forEach(v -> volumes.put(v.path("name").asText(), v));
            JsonNode root = volumes.values().stream().filter(v -> ROOT_CONFIG_MAP.equals(v.at("/configMap/name").asText()))
                    .findFirst().orElseThrow(() -> new AssertionError("no " + ROOT_CONFIG_MAP + " volume in " + pod));
            JsonNode mounts = pod.path("containers").get(0).path("volumeMounts");
            assertTrue(stream(mounts).anyMatch(m -> root.path("name").asText().equals(m.path("name").asText())
                    && "/var/run/secrets/istio".equals(m.path("mountPath").asText())), "root mounted: " + mounts);
            assertTrue(stream(pod.path("volumes")).flatMap(v -> stream(v.at("/projected/sources")))
                    .anyMatch(src -> "istio-ca".equals(src.at("/serviceAccountToken/audience").asText())
                            && "ambient-ca-token".equals(src.at("/serviceAccountToken/path").asText())),
                    "a projected token for audience istio-ca: " + pod.path("volumes"));
        }
        assertTrue(ofKind("ClusterRole").stream().filter(r -> "ambient-xds".equals(r.at("/metadata/name").asText()))
                .flatMap(r -> stream(r.path("rules")))
                .anyMatch(rule -> stream(rule.path("resources")).anyMatch(x -> "tokenreviews".equals(x.asText()))
                        && stream(rule.path("verbs")).anyMatch(x -> "create".equals(x.asText()))),
                "svc-xds may create TokenReviews");
    }

    @Test
    void ztunnelNeedsNoKubernetesApiAccess() {
        for (String kind : List.of("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")) {
            for (JsonNode d : ofKind(kind)) {
                assertFalse(stream(d.path("subjects")).anyMatch(s -> "ztunnel".equals(s.path("name").asText())),
                        () -> id(d) + " grants the ztunnel API access");
            }
        }
    }

    /** Every ztunnel.* key of the ConfigMap is a real ZtunnelConfig key, or ztunnel would refuse to start. */
    @Test
    void configMapOverridesAreKeysZtunnelKnows() throws IOException {
        JsonNode cm = ofKind("ConfigMap").stream()
                .filter(d -> "ztunnel-config".equals(d.at("/metadata/name").asText())).findFirst()
                .orElseThrow(() -> new AssertionError("ConfigMap ztunnel-config"));
        Properties props = new Properties();
        props.load(new StringReader(cm.at("/data/application.properties").asText()));
        assertEquals("cluster.local", props.getProperty("ztunnel.trust-domain"));
        // In-pod mode, on the ZDS socket of the host path shared with the cni-agent.
        assertEquals("true", props.getProperty("ztunnel.inpod.enabled"));
        String zds = props.getProperty("ztunnel.inpod.zds-socket");
        assertTrue(stream(container().path("volumeMounts")).anyMatch(m -> zds != null
                && zds.startsWith(m.path("mountPath").asText() + "/")
                && "cni-ztunnel-sock-dir".equals(m.path("name").asText())), "ZDS socket in the shared host path: " + zds);

        Set<String> known = new TreeSet<>();
        collectKeys(ZtunnelConfig.class, "ztunnel", known);
        for (String key : props.stringPropertyNames()) {
            if (key.startsWith("ztunnel.")) {
                assertTrue(known.contains(key), () -> key + " is not a ztunnel setting; known: " + known);
            }
        }
        String location = value(container().path("env"), "QUARKUS_CONFIG_LOCATIONS");
        assertTrue(stream(container().path("volumeMounts")).anyMatch(m -> "config".equals(m.path("name").asText())
                && location.equals(m.path("mountPath").asText() + "/application.properties")),
                "QUARKUS_CONFIG_LOCATIONS points into the mounted ConfigMap: " + location);
    }

    // --- helpers ---

    static void assertProbe(JsonNode probe, String path, Map<String, Integer> ports) {
        assertFalse(probe.isMissingNode(), "probe for " + path);
        assertEquals(path, probe.at("/httpGet/path").asText());
        JsonNode port = probe.at("/httpGet/port");
        int number = port.isInt() ? port.asInt() : ports.getOrDefault(port.asText(), -1);
        assertEquals(15021, number, path + " probes the health port");
    }

    static void collectKeys(Class<?> type, String prefix, Set<String> keys) {
        for (Method m : type.getDeclaredMethods()) {
            if (m.isDefault() || java.lang.reflect.Modifier.isStatic(m.getModifiers()) || m.getParameterCount() > 0) {
                continue;
            }
            String key = prefix + "." + kebab(m.getName());
            Class<?> r = m.getReturnType();
            if (r.isInterface() && r.getPackageName().startsWith("dev.ambient")) { // a group, ours or shared
                collectKeys(r, key, keys);
            } else {
                keys.add(key);
            }
        }
    }

    static String kebab(String camel) {
        return camel.replaceAll("([a-z0-9])([A-Z])", "$1-$2").toLowerCase(java.util.Locale.ROOT);
    }

    static JsonNode ztunnel() {
        return ofKind("DaemonSet").stream().filter(d -> "ztunnel".equals(d.at("/metadata/name").asText()))
                .findFirst().orElseThrow(() -> new AssertionError("DaemonSet ztunnel is not rendered"));
    }

    static JsonNode container() {
        return stream(ztunnel().at("/spec/template/spec/containers"))
                .filter(c -> "ztunnel".equals(c.path("name").asText())).findFirst()
                .orElseThrow(() -> new AssertionError("container ztunnel"));
    }

    static String fieldRef(JsonNode env, String name) {
        return entry(env, name).at("/valueFrom/fieldRef/fieldPath").asText();
    }

    static String value(JsonNode env, String name) {
        return entry(env, name).path("value").asText();
    }

    static JsonNode entry(JsonNode env, String name) {
        return stream(env).filter(e -> name.equals(e.path("name").asText())).findFirst()
                .orElseThrow(() -> new AssertionError("env " + name));
    }

    static List<JsonNode> ofKind(String kind) {
        return docs.stream().filter(d -> kind.equals(d.path("kind").asText())).toList();
    }

    static Set<String> texts(JsonNode array) {
        Set<String> s = new HashSet<>();
        array.forEach(n -> s.add(n.asText()));
        return s;
    }

    static Stream<JsonNode> stream(JsonNode array) {
        List<JsonNode> l = new ArrayList<>();
        array.forEach(l::add);
        return l.stream();
    }

    static String id(JsonNode d) {
        return d.path("kind").asText() + "/" + d.at("/metadata/name").asText();
    }

    /** The repository root: the nearest directory above the working directory that holds k8s/kustomization.yaml. */
    static Path repoRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("k8s/kustomization.yaml")) && Files.isRegularFile(p.resolve("pom.xml"))) {
                return p;
            }
        }
        throw new AssertionError("no k8s/kustomization.yaml above " + Path.of("").toAbsolutePath());
    }

    static Optional<Path> onPath(String command) {
        String path = System.getenv("PATH");
        if (path == null) {
            return Optional.empty();
        }
        return Stream.of(path.split(java.io.File.pathSeparator)).filter(s -> !s.isEmpty())
                .map(dir -> Path.of(dir, command)).filter(Files::isExecutable).findFirst();
    }

    static String read(java.io.InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
