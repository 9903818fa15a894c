package dev.ambient.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.ambient.cni.config.CniConfig;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What {@code kubectl apply -k k8s/} gives the node agent: the DaemonSet with the privileges, host
 * paths and settings the agent needs, and read-only RBAC for its watches. No schema validator
 * works offline here, so the rendered YAML is checked field by field. Skipped without kubectl.
 */
class K8sManifestsTest {

    static List<JsonNode> docs;

    @BeforeAll
    static void render() throws Exception {
        Optional<Path> kubectl = Stream.of(System.getenv().getOrDefault("PATH", "").split(":"))
                .filter(s -> !s.isEmpty()).map(d -> Path.of(d, "kubectl")).filter(Files::isExecutable).findFirst();
        Assumptions.assumeTrue(kubectl.isPresent(), "kubectl is not installed: k8s/ not checked");
        Path k8s = repoRoot().resolve("k8s");
        Process p = new ProcessBuilder(kubectl.get().toString(), "kustomize", k8s.toString()).start();
        p.getOutputStream().close();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("kubectl kustomize did not finish in 120 s");
        }
        assertEquals(0, p.exitValue(), () -> "kubectl kustomize failed:\n" + err.join());
        docs = new ArrayList<>();
        try (var it = new ObjectMapper(new YAMLFactory()).readerFor(JsonNode.class).<JsonNode>readValues(out.get())) {
            while (it.hasNext()) {
                JsonNode d = it.next();
                if (d != null && !d.isNull() && !d.isEmpty()) {
                    docs.add(d);
                }
            }
        }
    }

    static JsonNode daemonSet() {
        return ofKind("DaemonSet").stream().filter(d -> "cni-agent".equals(d.at("/metadata/name").asText()))
                .findFirst().orElseThrow(() -> new AssertionError("DaemonSet cni-agent is not rendered"));
    }

    static JsonNode container() {
        return daemonSet().at("/spec/template/spec/containers/0");
    }

    @Test
    void aPrivilegedHostNetworkDaemonSetOnEveryNode() {
        JsonNode ds = daemonSet();
        assertEquals("istio-system", ds.at("/metadata/namespace").asText());
        JsonNode pod = ds.at("/spec/template/spec");
        assertTrue(pod.path("hostNetwork").asBoolean(), "hostNetwork");
        assertTrue(pod.path("hostPID").asBoolean(), "hostPID: running pods are found through /proc");
        assertTrue(container().at("/securityContext/privileged").asBoolean(), "privileged");
        assertEquals("system-node-critical", pod.path("priorityClassName").asText());
        assertTrue(stream(pod.path("tolerations")).anyMatch(t -> "Exists".equals(t.path("operator").asText())
                && t.path("key").isMissingNode()), "tolerates every taint");
        assertEquals("none", ds.at("/spec/template/metadata/labels/istio.io~1dataplane-mode").asText(),
                "the agent itself is never enrolled");
        ds.at("/spec/selector/matchLabels").properties().forEach(e -> assertEquals(e.getValue().asText(),
                ds.at("/spec/template/metadata/labels").path(e.getKey()).asText()));
        assertEquals("15020", ds.at("/spec/template/metadata/annotations/prometheus.io~1port").asText());
        assertEquals("/healthz/ready", container().at("/readinessProbe/httpGet/path").asText());
        assertEquals(15021, container().at("/readinessProbe/httpGet/port").asInt());
    }

    @Test
    void hostPathsForThePluginTheSocketsAndTheNamespaces() {
        Map<String, JsonNode> volumes = new HashMap<>();
        daemonSet().at("/spec/template/spec/volumes").forEach(v -> volumes.put(v.path("name").asText(), v));
        Map<String, String> mounts = new HashMap<>();
        for (JsonNode m : container().path("volumeMounts")) {
            JsonNode v = volumes.get(m.path("name").asText());
            assertNotNull(v, "mount of an undeclared volume: " + m);
            mounts.put(v.at("/hostPath/path").asText(), m.path("mountPath").asText());
        }
        Map<String, String> env = env();
        assertEquals(mounts.get("/opt/cni/bin"), env.get("CNI_INSTALL_BIN_DIR"));
        assertEquals(mounts.get("/etc/cni/net.d"), env.get("CNI_INSTALL_CONF_DIR"));
        assertEquals("/var/run/ztunnel", mounts.get("/var/run/ztunnel"), "ZDS directory shared with the ztunnel");
        assertTrue(env.get("CNI_ZDS_SOCKET").startsWith("/var/run/ztunnel/"));
        assertTrue(env.get("CNI_PLUGIN_SOCKET").startsWith(mounts.get("/var/run/ambient") + "/"),
                "the plugin on the host reaches the agent's socket");
        assertEquals("/var/run/netns", mounts.get("/var/run/netns"));
        assertEquals("HostToContainer", stream(container().path("volumeMounts"))
                .filter(m -> "/var/run/netns".equals(m.path("mountPath").asText())).findFirst().orElseThrow()
                .path("mountPropagation").asText());
        assertEquals("true", env.get("CNI_INSTALL_ENABLED"));
        assertEquals("spec.nodeName", stream(container().path("env")).filter(e -> "NODE_NAME".equals(
                e.path("name").asText())).findFirst().orElseThrow().at("/valueFrom/fieldRef/fieldPath").asText());
    }

    /** Every CNI_* variable is a real cni.* key, or the setting would silently not apply. */
    @Test
    void everyCniVariableIsAKeyTheAgentKnows() {
        Set<String> known = new HashSet<>();
        collect(CniConfig.class, "cni", known);
        for (String name : env().keySet()) {
            if (name.startsWith("CNI_")) {
                assertTrue(known.contains(name), () -> name + " is not a cni.* setting; known: " + known);
            }
        }
    }

    @Test
    void rbacOnlyReadsPodsAndNamespaces() {
        String sa = daemonSet().at("/spec/template/spec/serviceAccountName").asText();
        assertTrue(ofKind("ServiceAccount").stream().anyMatch(d -> sa.equals(d.at("/metadata/name").asText())));
        JsonNode binding = ofKind("ClusterRoleBinding").stream().filter(b -> stream(b.path("subjects"))
                .anyMatch(s -> sa.equals(s.path("name").asText()) && "istio-system".equals(s.path("namespace").asText())))
                .findFirst().orElseThrow(() -> new AssertionError("no ClusterRoleBinding for " + sa));
        JsonNode role = ofKind("ClusterRole").stream().filter(r -> binding.at("/roleRef/name").asText()
                .equals(r.at("/metadata/name").asText())).findFirst().orElseThrow();
        Set<String> grants = new HashSet<>();
        for (JsonNode rule : role.path("rules")) {
            for (JsonNode res : rule.path("resources")) {
                for (JsonNode verb : rule.path("verbs")) {
                    grants.add(res.asText() + ":" + verb.asText());
                }
            }
        }
        assertEquals(Set.of("pods:get", "pods:list", "pods:watch", "namespaces:get", "namespaces:list",
                "namespaces:watch"), grants);
    }

    static Map<String, String> env() {
        Map<String, String> out = new HashMap<>();
        container().path("env").forEach(e -> out.put(e.path("name").asText(), e.path("value").asText()));
        return out;
    }

    /** cni.install.bin-dir -> CNI_INSTALL_BIN_DIR, as Quarkus maps environment variables. */
    static void collect(Class<?> type, String prefix, Set<String> keys) {
        for (Method m : type.getDeclaredMethods()) {
            if (m.isDefault() || Modifier.isStatic(m.getModifiers()) || m.getParameterCount() > 0) {
                continue;
            }
            String key = prefix + "." + m.getName().replaceAll("([a-z0-9])([A-Z])", "$1-$2").toLowerCase(Locale.ROOT);
            if (m.getReturnType().isInterface() && m.getReturnType().getEnclosingClass() == CniConfig.class) {
                collect(m.getReturnType(), key, keys);
            } else {
                keys.add(key.toUpperCase(Locale.ROOT).replaceAll("[^A-Z0-9]", "_"));
            }
        }
    }

    static List<JsonNode> ofKind(String kind) {
        return docs.stream().filter(d -> kind.equals(d.path("kind").asText())).toList();
    }

    static Stream<JsonNode> stream(JsonNode array) {
        List<JsonNode> l = new ArrayList<>();
        array.forEach(l::add);
        return l.stream();
    }

    static Path repoRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("k8s/kustomization.yaml"))) {
                return p;
            }
        }
        throw new AssertionError("no k8s/kustomization.yaml above " + Path.of("").toAbsolutePath());
    }

    static String read(java.io.InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
