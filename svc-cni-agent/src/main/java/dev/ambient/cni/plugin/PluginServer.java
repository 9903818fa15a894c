package dev.ambient.cni.plugin;

import dev.ambient.cni.enrol.CniAnswer;
import dev.ambient.cni.enrol.CniRequest;
import dev.ambient.cni.enrol.Enroller;
import dev.ambient.cni.metrics.CniMetrics;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jboss.logging.Logger;

/**
 * The agent's endpoint for the CNI plugin: a unix stream socket (mode 0600, root only), one request
 * per connection, each served on its own virtual thread that waits for the enrolment's outcome.
 */
public final class PluginServer implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(PluginServer.class);

    private final Path path;
    private final Enroller enroller;
    private final CniMetrics metrics;
    private final Duration answerTimeout;
    private ServerSocketChannel server;
    private volatile boolean closed;

    public PluginServer(Path path, Enroller enroller, CniMetrics metrics, Duration answerTimeout) {
        this.path = path;
        this.enroller = enroller;
        this.metrics = metrics;
        this.answerTimeout = answerTimeout;
    }

    public void start() throws IOException {
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.deleteIfExists(path); // left by a previous agent
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
        LOG.infof("CNI plugin socket on %s", path);
        Thread.ofPlatform().daemon().name("cni-plugin-accept").start(this::acceptLoop);
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                SocketChannel ch = server.accept();
                Thread.ofVirtual().name("cni-plugin-request").start(() -> serve(ch));
            } catch (IOException e) {
                if (!closed) {
                    LOG.errorf("CNI plugin socket: %s", e.getMessage());
                }
            }
        }
    }

    private void serve(SocketChannel ch) {
        long t0 = System.nanoTime();
        String command = "?";
        try (ch) {
            Map<String, String> f = PluginProtocol.decode(PluginProtocol.read(ch));
            command = f.getOrDefault("command", "");
            List<String> ips = f.getOrDefault("ips", "").isEmpty() ? List.of()
                    : Arrays.asList(f.get("ips").split(","));
            CniRequest r = new CniRequest(command, f.getOrDefault("namespace", ""), f.getOrDefault("name", ""),
                    f.getOrDefault("uid", ""), f.getOrDefault("container", ""), f.getOrDefault("netns", ""), ips);
            CniAnswer a;
            try {
                // One deadline for the whole request: the plugin's own timeout is set just above it.
                long deadline = System.nanoTime() + answerTimeout.toNanos();
                // Just (re)started: answer from a full listing, not from an empty cache.
                if (!enroller.awaitSource(answerTimeout)) {
                    throw new TimeoutException("pods and namespaces not listed yet");
                }
                a = enroller.cni(r).get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                a = CniAnswer.error("the agent did not finish within " + answerTimeout + ": " + e.getMessage());
            } catch (Exception e) {
                Throwable c = e.getCause() != null ? e.getCause() : e;
                a = CniAnswer.error(c.toString());
            }
            String status = a.status().name().toLowerCase(java.util.Locale.ROOT);
            LOG.infof("CNI %s %s/%s (container %s): %s, %s", command, r.namespace(), r.name(),
                    abbreviate(r.containerId()), status, a.message());
            metrics.pluginCall(command, status, Duration.ofNanos(System.nanoTime() - t0));
            PluginProtocol.write(ch, status + "\n" + a.message().replace('\n', ' ') + "\n");
        } catch (IOException | RuntimeException e) {
            metrics.pluginCall(command, "broken", Duration.ofNanos(System.nanoTime() - t0));
            LOG.warnf("CNI plugin request failed: %s", e.getMessage());
        }
    }

    private static String abbreviate(String id) {
        return id.length() > 12 ? id.substring(0, 12) : id;
    }

    @Override
    public void close() {
        closed = true;
        if (server != null) {
            try {
                server.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        try {
            if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
                Files.delete(path);
            }
        } catch (IOException e) {
            // a later start removes it
        }
    }
}
