package dev.ambient.controlplane;

import dev.ambient.hbone.HboneAdmission;
import io.vertx.grpc.VertxServerBuilder;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.Config;
import org.jboss.logging.Logger;

/**
 * What one peer may make a control-plane gRPC server (svc-ca 15012, svc-xds 15010) hold, beyond
 * the TLS handshake timeout and keep-alive policy Quarkus's own keys set. Any pod reaches these
 * ports, and grpc-java bounds none of this by default. Keys {@code control-plane.grpc.*}, the same
 * in both services, documented in their READMEs; applied by {@link ServingTlsCustomizer}.
 *
 * @param maxConnectionIdle a connection without a call this long gets GOAWAY and is closed (a
 *        client reconnects at its next call; a proxy's discovery stream is a call, so it stays)
 * @param maxConcurrentCallsPerConnection the server's SETTINGS_MAX_CONCURRENT_STREAMS: calls open
 *        at once on one connection, even calls that never send a message; grpc-java clients queue
 *        beyond it; a peer that does not gets REFUSED_STREAM, or RESOURCE_EXHAUSTED from
 *        {@link CallAdmission} when it opened them before acknowledging the SETTINGS
 * @param rapidResetBudget RST_STREAM frames per window on one connection, received or sent
 *        (REFUSED_STREAM counts): one more gets GOAWAY(ENHANCE_YOUR_CALM) (CVE-2023-44487)
 * @param rapidResetWindow that window, whole seconds
 * @param maxConnections connections past the client's first SETTINGS the server holds at once; 0:
 *        automatic, see {@link #resolve}
 * @param maxConnectionsPerSource of those, from one IP address; 0: automatic, half of
 *        {@code maxConnections}
 * @param maxCalls calls open at once on all connections (a call holds heap from its HEADERS on,
 *        message or not); 0: automatic, see {@link #resolve}
 * @param maxCallsPerSource of those, from one IP address; 0: automatic, half of {@code maxCalls}
 */
public record GrpcServerLimits(Duration maxConnectionIdle, int maxConcurrentCallsPerConnection, int rapidResetBudget,
        Duration rapidResetWindow, int maxConnections, int maxConnectionsPerSource, int maxCalls,
        int maxCallsPerSource) {

    private static final Logger LOG = Logger.getLogger(GrpcServerLimits.class);

    static final String PREFIX = "control-plane.grpc.";

    public static final GrpcServerLimits DEFAULTS = new GrpcServerLimits(Duration.ofMinutes(5), 100, 200,
            Duration.ofSeconds(30), 0, 0, 0, 0);

    /**
     * Heap budgeted per connection when {@code max-connections} is automatic: an idle one (TLS 1.3
     * with the JDK engine, HTTP/2 codec, grpc-java transport) measured 42-55 KiB, so all of them
     * together take less than half the heap.
     */
    static final long HEAP_PER_CONNECTION = 128 << 10;

    /**
     * Heap budgeted per call when {@code max-calls} is automatic: a call without a message measured
     * 4-14 KiB, so all of them together take less than a quarter of the heap.
     */
    static final long HEAP_PER_CALL = 64 << 10;

    /** The least an automatic bound resolves to, however small the process. */
    static final int MIN_AUTOMATIC = 64;

    public GrpcServerLimits {
        if (maxConnectionIdle.isNegative() || maxConnectionIdle.isZero() || rapidResetWindow.toSeconds() < 1) {
            throw new IllegalArgumentException(PREFIX + "max-connection-idle and rapid-reset-window must be positive"
                    + " (the window whole seconds)");
        }
        if (maxConcurrentCallsPerConnection < 1 || rapidResetBudget < 1) {
            throw new IllegalArgumentException(PREFIX + "max-concurrent-calls-per-connection and rapid-reset-budget"
                    + " must be positive");
        }
        if (maxConnections < 0 || maxConnectionsPerSource < 0 || maxCalls < 0 || maxCallsPerSource < 0) {
            throw new IllegalArgumentException(PREFIX + "connection bounds must be positive (0: automatic)");
        }
    }

    /** The {@code control-plane.grpc.*} keys, each defaulting to {@link #DEFAULTS}. */
    public static GrpcServerLimits from(Config config) {
        return new GrpcServerLimits(
                config.getOptionalValue(PREFIX + "max-connection-idle", Duration.class)
                        .orElse(DEFAULTS.maxConnectionIdle),
                config.getOptionalValue(PREFIX + "max-concurrent-calls-per-connection", Integer.class)
                        .orElse(DEFAULTS.maxConcurrentCallsPerConnection),
                config.getOptionalValue(PREFIX + "rapid-reset-budget", Integer.class).orElse(DEFAULTS.rapidResetBudget),
                config.getOptionalValue(PREFIX + "rapid-reset-window", Duration.class).orElse(DEFAULTS.rapidResetWindow),
                config.getOptionalValue(PREFIX + "max-connections", Integer.class).orElse(DEFAULTS.maxConnections),
                config.getOptionalValue(PREFIX + "max-connections-per-source", Integer.class)
                        .orElse(DEFAULTS.maxConnectionsPerSource),
                config.getOptionalValue(PREFIX + "max-calls", Integer.class).orElse(DEFAULTS.maxCalls),
                config.getOptionalValue(PREFIX + "max-calls-per-source", Integer.class)
                        .orElse(DEFAULTS.maxCallsPerSource));
    }

    /**
     * The automatic bounds made concrete for a process: {@code maxConnections} half its file
     * descriptors, and no more than its heap holds at {@link #HEAP_PER_CONNECTION} each;
     * {@code maxCalls} one per {@link #HEAP_PER_CALL} of heap; each per-source bound half of its
     * total. A share, not a tight fit: an address may stand for many clients (proxies of a remote
     * cluster through one gateway, nodes behind SNAT), while no address may hold more than all the
     * others can still open.
     */
    public GrpcServerLimits resolve(long maxFds, long maxHeap) {
        int connections = maxConnections > 0 ? maxConnections : automatic(Math.min(maxFds / 2, maxHeap / HEAP_PER_CONNECTION));
        int calls = maxCalls > 0 ? maxCalls : automatic(maxHeap / HEAP_PER_CALL);
        return new GrpcServerLimits(maxConnectionIdle, maxConcurrentCallsPerConnection, rapidResetBudget,
                rapidResetWindow, connections, maxConnectionsPerSource > 0 ? maxConnectionsPerSource : half(connections),
                calls, maxCallsPerSource > 0 ? maxCallsPerSource : half(calls));
    }

    private static int automatic(long bound) {
        return (int) Math.min(Integer.MAX_VALUE, Math.max(MIN_AUTOMATIC, bound));
    }

    private static int half(int bound) {
        return Math.max(1, bound / 2);
    }

    /** Applies these limits, resolved for this process (logged once), to a server being built. */
    void applyTo(VertxServerBuilder builder, String server) {
        long fds = HboneAdmission.maxFileDescriptors();
        GrpcServerLimits resolved = resolve(fds, Runtime.getRuntime().maxMemory());
        LOG.infof("%s: at most %d connections (%s), %d per source address; %d open calls (%s), %d per source address,"
                + " %d per connection; idle connections closed after %s; GOAWAY beyond %d stream resets per %d s"
                + " (RLIMIT_NOFILE %s, max heap %d MiB)", server, resolved.maxConnections,
                maxConnections > 0 ? "configured" : "automatic", resolved.maxConnectionsPerSource, resolved.maxCalls,
                maxCalls > 0 ? "configured" : "automatic", resolved.maxCallsPerSource, maxConcurrentCallsPerConnection,
                maxConnectionIdle, rapidResetBudget, rapidResetWindow.toSeconds(),
                fds == Long.MAX_VALUE ? "unknown" : fds, Runtime.getRuntime().maxMemory() >> 20);
        builder.nettyBuilder()
                .maxConnectionIdle(maxConnectionIdle.toNanos(), TimeUnit.NANOSECONDS)
                .maxConcurrentCallsPerConnection(maxConcurrentCallsPerConnection)
                .maxRstFramesPerWindow(rapidResetBudget, (int) rapidResetWindow.toSeconds());
        builder.addTransportFilter(new GrpcConnectionAdmission(server, resolved.maxConnections,
                resolved.maxConnectionsPerSource));
        builder.intercept(new CallAdmission(server, maxConcurrentCallsPerConnection, resolved.maxCalls,
                resolved.maxCallsPerSource));
    }
}
