package dev.ambient.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The five container images that {@code ./mvnw verify} (or {@code package -Dimages}) built with
 * native-images/images/build.sh: each starts to ready in a podman container with the pod's options
 * (its manifest's capabilities, read-only root) and uses its AOT cache, is stopped and leaves no
 * container, network namespace or mount behind; the images say what the manifests in k8s/ expect
 * (names and tag from kustomize's {@code images:}, JAVA_OPTS, user); the cni-agent's image carries
 * the tools and the CNI plugin its work needs. Skipped with {@code -Dimages.skip=true}.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class ImagesIT {

    static final Path REPO = Path.of("..").toAbsolutePath().normalize();
    static final Path BENCH = REPO.resolve("integration-tests/bench/images-bench.sh");
    static final String TAG = System.getProperty("images.tag", "0.1.0");
    static final List<String> SERVICES = List.of("ca", "xds", "ztunnel", "waypoint", "cni-agent");
    static final Map<String, String> USER = Map.of("ca", "1337", "xds", "1337", "waypoint", "1337",
            "ztunnel", "0", "cni-agent", "0");

    record Result(int exit, String out) {
    }

    @BeforeAll
    static void imagesWereBuilt() throws Exception {
        assumeFalse(Boolean.getBoolean("images.skip"), "images.skip: no images built in this run");
        for (String s : SERVICES) {
            assertEquals(0, run("podman", "image", "exists", image(s)).exit(),
                    image(s) + " missing: ./mvnw -B package -DskipTests -Dimages builds it");
        }
    }

    static String image(String service) {
        return "ambient-mesh/" + service + ":" + TAG;
    }

    @Test
    void eachImageStartsToReadyWithItsAotCacheAndLeavesNothingBehind() throws Exception {
        Set<String> netnsBefore = lines(run("ip", "netns", "list").out());
        long mountsBefore = containerMounts();
        Path out = Files.createTempDirectory("images-it");

        Result bench = run(Map.of("OUT", out.toString()), Duration.ofMinutes(8),
                BENCH.toString(), "-n", "1", "-i", "1");

        assertEquals(0, bench.exit(), "images-bench.sh failed:\n" + bench.out());
        List<String> rows = Files.readAllLines(out.resolve("results.tsv"));
        assertEquals(SERVICES.size() + 1, rows.size(), String.join("\n", rows));
        for (String row : rows.subList(1, rows.size())) {
            String[] f = row.split("\t");
            // service mode size archive runs ready_median ready_all rss aot_used
            assertEquals("1", f[4], f[0] + " never got ready in its container:\n" + bench.out());
            assertTrue(Long.parseLong(f[5]) > 0, row);
            assertEquals("yes", f[8], f[0] + " started without its AOT cache (log in " + out + "/logs)");
        }
        assertEquals("", run("podman", "ps", "-a", "-q", "--filter", "label=dev.ambient.images=standalone").out().strip(),
                "containers left behind");
        assertEquals(netnsBefore, lines(run("ip", "netns", "list").out()), "network namespaces left behind");
        assertEquals(mountsBefore, containerMounts(), "container mounts left behind");
    }

    @Test
    void manifestsNameExactlyTheImagesBuilt() throws Exception {
        Result rendered = run("kubectl", "kustomize", REPO.resolve("k8s").toString());
        assumeFalse(rendered.exit() == 127, "kubectl not installed");
        assertEquals(0, rendered.exit(), rendered.out());
        Set<String> named = new TreeSet<>();
        Matcher m = Pattern.compile("(?m)^\\s*(?:- )?image: (\\S+)$").matcher(rendered.out());
        while (m.find()) {
            named.add(m.group(1));
        }
        Matcher w = Pattern.compile("name: XDS_WAYPOINT_IMAGE\\s+value: (\\S+)").matcher(rendered.out());
        assertTrue(w.find(), "xds names no waypoint image");
        named.add(w.group(1));
        assertEquals(SERVICES.stream().map(ImagesIT::image).collect(Collectors.toCollection(TreeSet::new)), named);
    }

    @Test
    void imagesRunAsTheManifestsSayWithTheirJavaOptions() throws Exception {
        String javaOpts = javaOptsOfManifests();
        for (String s : SERVICES) {
            Result inspect = run("podman", "image", "inspect", "-f",
                    "{{.Config.User}}|{{range .Config.Env}}{{println .}}{{end}}", image(s));
            assertEquals(0, inspect.exit(), inspect.out());
            String[] parts = inspect.out().split("\\|", 2);
            assertEquals(USER.get(s), parts[0].strip(), s + ": user");
            assertTrue(parts[1].lines().anyMatch(("JAVA_OPTS=" + javaOpts)::equals),
                    s + ": the image's JAVA_OPTS differ from the manifests' (" + javaOpts + "):\n" + parts[1]);
        }
    }

    @Test
    void cniAgentImageCarriesItsToolsAndThePlugin() throws Exception {
        Result tools = run("podman", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image("cni-agent"), "-c",
                "iptables --version && iptables-restore --version && nft --version && ip -V && nsenter --version"
                        + " && test -x /opt/ambient/cni/ambient-cni && test -s /opt/ambient/cni/ambient-cni.d/ambient-cni.jar"
                        + " && test -s /opt/ambient/cni/ambient-cni.d/ambient-cni.aot"
                        + " && CNI_COMMAND=VERSION /opt/ambient/cni/ambient-cni </dev/null");
        assertEquals(0, tools.exit(), tools.out());
        assertTrue(tools.out().contains("nf_tables"), "iptables is not the nf_tables backend:\n" + tools.out());
        assertTrue(tools.out().contains("\"supportedVersions\""), "the plugin's VERSION answer:\n" + tools.out());
        // The plugin's own runtime must not complain about its AOT cache (stderr is the runtime's log).
        assertTrue(!tools.out().contains("[aot"), tools.out());
        // Nothing else: no package manager, no shell but dash, in the others too.
        for (String s : SERVICES) {
            Result absent = run("podman", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image(s), "-c",
                    "for c in apt dpkg bash perl python3 curl; do command -v $c && exit 1; done; exit 0");
            assertEquals(0, absent.exit(), s + " carries " + absent.out());
        }
    }

    /**
     * The mesh in a box from the images ({@code meshbox up --images}) behaves as from the jars
     * (MeshInABoxIT): the route's split through the waypoint, its L7 deny, mTLS pod to pod, the
     * in-pod rules the agent's container installed; then {@code down} leaves no container.
     */
    @Test
    void meshInABoxRunsFromTheImages() throws Exception {
        Path state = Path.of("target", "meshbox-images").toAbsolutePath();
        Map<String, String> env = Map.of("MESHBOX_DIR", state.toString(), "MESHBOX_SKIP_BUILD", "1");
        String meshbox = MeshInABoxIT.MESHBOX.toString();
        run(env, Duration.ofMinutes(2), meshbox, "down");
        try {
            Result up = run(env, Duration.ofMinutes(6), meshbox, "up", "--images");
            assertEquals(0, up.exit(), "meshbox up --images:\n" + up.out());
            for (String container : List.of("mbox-ca", "mbox-xds", "mbox-ztunnel-node-a", "mbox-ztunnel-node-b",
                    "mbox-cni-agent-node-a", "mbox-cni-agent-node-b", "mbox-pod-waypoint-0")) {
                assertEquals("true", run("podman", "inspect", "-f", "{{.State.Running}}", container).out().strip(), container);
            }
            int v1 = 0;
            int v2 = 0;
            for (int i = 0; i < 40; i++) {
                String body = run(env, Duration.ofSeconds(60), meshbox, "exec", "sleep", "curl", "-sS", "--max-time", "10",
                        "http://httpbin/").out();
                if (body.contains("httpbin-v1")) {
                    v1++;
                } else if (body.contains("httpbin-v2")) {
                    v2++;
                } else {
                    fail("through the waypoint: " + body);
                }
            }
            assertTrue(v1 > v2 && v1 + v2 == 40, "90/10 route: v1 " + v1 + ", v2 " + v2);
            assertTrue(run(env, Duration.ofSeconds(60), meshbox, "exec", "sleep", "curl", "-si", "--max-time", "10",
                    "http://httpbin/admin").out().startsWith("HTTP/1.1 403"), "the waypoint's L7 deny");
            assertTrue(run(env, Duration.ofSeconds(60), meshbox, "exec", "sleep", "curl", "-sS", "--max-time", "10",
                    "http://10.44.2.11:8080/").out().contains("httpbin-v1"), "pod to pod through the ztunnels");
            String rules = run(env, Duration.ofSeconds(60), meshbox, "exec", "httpbin-v1", "iptables-save", "-t", "nat").out();
            assertTrue(rules.contains("15006") && rules.contains("15001"), "the agent's in-pod rules:\n" + rules);
            assertTrue(Files.isExecutable(state.resolve("node-b/cni/bin/ambient-cni.d/jre/bin/java")),
                    "the agent installed the plugin with its runtime from the image");
        } finally {
            Result down = run(env, Duration.ofMinutes(2), meshbox, "down");
            assertEquals(0, down.exit(), down.out());
        }
        assertEquals("", run("podman", "ps", "-a", "-q", "--filter", "label=dev.ambient.meshbox=1").out().strip(),
                "meshbox down left containers");
        assertTrue(run("ip", "netns", "list").out().lines().noneMatch(l -> l.startsWith("mbox-")), "netns left");
    }

    static String javaOptsOfManifests() throws Exception {
        String ca = Files.readString(REPO.resolve("k8s/ca/deployment.yaml"));
        Matcher m = Pattern.compile("name: JAVA_OPTS\\s+value: (.+)").matcher(ca);
        assertTrue(m.find(), "k8s/ca/deployment.yaml sets no JAVA_OPTS");
        return m.group(1).strip();
    }

    /** Overlay and bind mounts of containers: podman's storage, and the bench's state directory. */
    static long containerMounts() throws Exception {
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .filter(l -> l.contains("/containers/storage/overlay/") || l.contains("images-it")
                        || l.contains("/var/run/containers/storage/") || l.contains("/run/containers/storage/"))
                .count();
    }

    static Set<String> lines(String s) {
        return new TreeSet<>(Arrays.asList(s.strip().split("\n")));
    }

    static Result run(String... command) throws Exception {
        return run(Map.of(), Duration.ofMinutes(2), command);
    }

    static Result run(Map<String, String> env, Duration timeout, String... command) throws Exception {
        Path out = Files.createTempFile("images-it", ".out");
        try {
            ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(List.of(command)))
                    .redirectErrorStream(true).redirectOutput(out.toFile());
            pb.environment().putAll(env);
            Process p;
            try {
                p = pb.start();
            } catch (java.io.IOException e) {
                return new Result(127, e.getMessage());
            }
            p.getOutputStream().close();
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroy();
                p.waitFor(30, TimeUnit.SECONDS);
                p.destroyForcibly();
                fail(String.join(" ", command) + " did not finish in " + timeout + ":\n" + Files.readString(out));
            }
            return new Result(p.exitValue(), Files.readString(out));
        } finally {
            Files.deleteIfExists(out);
        }
    }
}
