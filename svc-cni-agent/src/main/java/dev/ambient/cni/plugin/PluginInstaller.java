package dev.ambient.cni.plugin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * Puts the plugin on the node: the launcher and its directory into the host's CNI bin dir, and an
 * {@code ambient-cni} entry at the end of the node's CNI network (the first {@code *.conflist} in
 * the conf dir, as the runtime picks it), after the cluster's own plugins. Idempotent; rewrites
 * are atomic (temp file and rename), and it checks every 10 s that the primary CNI did not
 * rewrite the entry away. {@link #uninstall()} takes both out again.
 */
public final class PluginInstaller implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(PluginInstaller.class);
    public static final String TYPE = "ambient-cni";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Path source;
    private final Path binDir;
    private final Path confDir;
    private final Path agentSocket;
    private final long agentTimeoutSeconds;
    private ScheduledExecutorService watch;

    /**
     * @param source the directory holding {@code ambient-cni} and {@code ambient-cni.d/}
     * @param agentTimeoutSeconds the plugin's {@code agent_timeout_seconds}: {@link CniDeadlines#pluginTimeoutSeconds()},
     *     so the plugin waits longer than the agent takes to answer
     */
    public PluginInstaller(Path source, Path binDir, Path confDir, Path agentSocket, long agentTimeoutSeconds) {
        this.source = source;
        this.binDir = binDir;
        this.confDir = confDir;
        this.agentSocket = agentSocket;
        this.agentTimeoutSeconds = agentTimeoutSeconds;
    }

    public void install() throws IOException {
        copyBinaries();
        chain();
        if (watch == null) {
            watch = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("cni-install").factory());
            watch.scheduleWithFixedDelay(() -> {
                try {
                    chain();
                } catch (IOException | RuntimeException e) {
                    LOG.warnf("checking the CNI chain in %s: %s", confDir, e.getMessage());
                }
            }, 10, 10, TimeUnit.SECONDS);
        }
    }

    void copyBinaries() throws IOException {
        Files.createDirectories(binDir);
        Path dir = source.resolve("ambient-cni.d");
        Path targetDir = binDir.resolve("ambient-cni.d");
        if (Files.isDirectory(dir)) {
            try (Stream<Path> walk = Files.walk(dir)) {
                for (Path p : walk.toList()) {
                    Path t = targetDir.resolve(dir.relativize(p).toString());
                    if (Files.isDirectory(p)) {
                        Files.createDirectories(t);
                    } else {
                        copyAtomically(p, t);
                    }
                }
            }
        }
        copyAtomically(source.resolve("ambient-cni"), binDir.resolve("ambient-cni"));
        Files.setPosixFilePermissions(binDir.resolve("ambient-cni"), PosixFilePermissions.fromString("rwxr-xr-x"));
        LOG.infof("CNI plugin installed in %s", binDir);
    }

    private static void copyAtomically(Path from, Path to) throws IOException {
        Path tmp = to.resolveSibling("." + to.getFileName() + ".tmp");
        Files.copy(from, tmp, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.COPY_ATTRIBUTES);
        Files.move(tmp, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The network the runtime uses: the first *.conflist by name. */
    Optional<Path> primaryConflist() throws IOException {
        if (!Files.isDirectory(confDir)) {
            return Optional.empty();
        }
        try (Stream<Path> s = Files.list(confDir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".conflist"))
                    .filter(p -> !p.getFileName().toString().startsWith("."))
                    .min(Comparator.comparing(p -> p.getFileName().toString()));
        }
    }

    /** Adds (or refreshes) our entry at the end of the chain; returns whether the file changed. */
    public boolean chain() throws IOException {
        Optional<Path> conf = primaryConflist();
        if (conf.isEmpty()) {
            LOG.warnf("no *.conflist in %s yet: the cluster's CNI has not written its network; waiting", confDir);
            return false;
        }
        ObjectNode root = (ObjectNode) JSON.readTree(conf.get().toFile());
        JsonNode plugins = root.path("plugins");
        if (!(plugins instanceof ArrayNode list)) {
            throw new IOException(conf.get() + " has no plugins array");
        }
        ObjectNode ours = JSON.createObjectNode();
        ours.put("type", TYPE);
        ours.put("agent_socket", agentSocket.toString());
        ours.put("agent_timeout_seconds", (int) agentTimeoutSeconds); // an int, as read back from the file
        ours.putArray("exclude_namespaces").add("kube-system").add("istio-system");
        int at = -1;
        for (int i = 0; i < list.size(); i++) {
            if (TYPE.equals(list.get(i).path("type").asText())) {
                at = i;
            }
        }
        if (at == list.size() - 1 && list.get(at).equals(ours)) {
            return false;
        }
        if (at >= 0) {
            list.remove(at);
        }
        list.add(ours);
        write(conf.get(), root);
        LOG.infof("chained %s into %s", TYPE, conf.get());
        return true;
    }

    /** Takes our entry out of the chain and the plugin off the node. */
    public void uninstall() {
        close();
        try {
            Optional<Path> conf = primaryConflist();
            if (conf.isPresent()) {
                ObjectNode root = (ObjectNode) JSON.readTree(conf.get().toFile());
                if (root.path("plugins") instanceof ArrayNode list) {
                    boolean changed = false;
                    for (int i = list.size() - 1; i >= 0; i--) {
                        if (TYPE.equals(list.get(i).path("type").asText())) {
                            list.remove(i);
                            changed = true;
                        }
                    }
                    if (changed) {
                        write(conf.get(), root);
                        LOG.infof("removed %s from %s", TYPE, conf.get());
                    }
                }
            }
            Files.deleteIfExists(binDir.resolve("ambient-cni"));
            Path dir = binDir.resolve("ambient-cni.d");
            if (Files.isDirectory(dir)) {
                try (Stream<Path> walk = Files.walk(dir)) {
                    for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                        Files.delete(p);
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            LOG.errorf("uninstalling the CNI plugin: %s", e.getMessage());
        }
    }

    private static void write(Path file, JsonNode root) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".ambient-tmp");
        Files.write(tmp, JSON.writeValueAsBytes(root));
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    @Override
    public void close() {
        if (watch != null) {
            watch.shutdownNow();
            watch = null;
        }
    }
}
