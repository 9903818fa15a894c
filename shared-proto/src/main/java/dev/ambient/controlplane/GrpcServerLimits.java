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
 *        {@link CallsPerConnection} when it opened them before acknowledging the SETTINGS
 * @param rapidResetBudget RST_STREAM frames per window on one connection, received or sent
 *        (REFUSED_STREAM counts): one more gets GOAWAY(ENHANCE_YOUR_CALM) (CVE-2023-44487)
 * @param rapidResetWindow that window, whole seconds
 * @param maxConnections connections past the client's first SETTINGS the server holds at once; 0:
 *        automatic, see {@link #resolve}
 * @param maxConnectionsPerSource of those, from one IP address; 0: automatic, half of
 *        {@code maxConnections}
 */
public record GrpcServerLimits(Duration maxConnectionIdle, int maxConcurrentCallsPerConnection, int rapidResetBudget,
        Duration rapidResetWindow, int maxConnections, int maxConnectionsPerSource) {

    private static final Logger LOG = Logger.getLogger(GrpcServerLimits.class);

    static final String PREFIX = "control-plane.grpc.";

    public static final GrpcServerLimits DEFAULTS = new GrpcServerLimits(Duration.ofMinutes(5), 100, 200,
            Duration.ofSeconds(30), 0, 0);

    /**
     * Heap budgeted per connection when {@code max-connections} is automatic: TLS 1.3 with the JDK
     * engine, the HTTP/2 codec and grpc-java's transport, with room for a few calls; more than the
     * 32 KiB of an HBONE connection, whose TLS and codec are lighter.
     */
    static final long HEAP_PER_CONNECTION = 64 << 10;

    /** The least {@code max-connections} resolves to, however small the process. */
    static final int MIN_CONNECTIONS = 64;

    public GrpcServerLimits {
        if (maxConnectionIdle.isNegative() || maxConnectionIdle.isZero() || rapidResetWindow.toSeconds() < 1) {
            throw new IllegalArgumentException(PREFIX + "max-connection-idle and rapid-reset-window must be positive"
                    + " (the window whole seconds)");
        }
        if (maxConcurrentCallsPerConnection < 1 || rapidResetBudget < 1) {
            throw new IllegalArgumentException(PREFIX + "max-concurrent-calls-per-connection and rapid-reset-budget"
                    + " must be positive");
        }
        if (maxConnections < 0 || maxConnectionsPerSource < 0) {
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
                        .orElse(DEFAULTS.maxConnectionsPerSource));
    }

    /**
     * The automatic bounds made concrete for a process: {@code maxConnections} half its file
     * descriptors, and no more than its heap holds at {@link #HEAP_PER_CONNECTION} each;
     * {@code maxConnectionsPerSource} half of that. A share, not a tight fit: an address may stand
     * for many clients (proxies of a remote cluster through one gateway, nodes behind SNAT), while
     * no address may hold more than all the others can still open.
     */
    public GrpcServerLimits resolve(long maxFds, long maxHeap) {
        long automatic = Math.max(MIN_CONNECTIONS, Math.min(maxFds / 2, maxHeap / HEAP_PER_CONNECTION));
        int connections = maxConnections > 0 ? maxConnections : (int) Math.min(Integer.MAX_VALUE, automatic);
        int perSource = maxConnectionsPerSource > 0 ? maxConnectionsPerSource : Math.max(1, connections / 2);
        return new GrpcServerLimits(maxConnectionIdle, maxConcurrentCallsPerConnection, rapidResetBudget,
                rapidResetWindow, connections, perSource);
    }

    /** Applies these limits, resolved for this process (logged once), to a server being built. */
    void applyTo(VertxServerBuilder builder, String server) {
        long fds = HboneAdmission.maxFileDescriptors();
        GrpcServerLimits resolved = resolve(fds, Runtime.getRuntime().maxMemory());
        LOG.infof("%s: at most %d connections (%s), %d per source address; %d calls per connection; idle connections"
                + " closed after %s; GOAWAY beyond %d stream resets per %d s", server, resolved.maxConnections,
                maxConnections > 0 ? "configured" : "automatic", resolved.maxConnectionsPerSource,
                maxConcurrentCallsPerConnection, maxConnectionIdle, rapidResetBudget, rapidResetWindow.toSeconds());
        builder.nettyBuilder()
                .maxConnectionIdle(maxConnectionIdle.toNanos(), TimeUnit.NANOSECONDS)
                .maxConcurrentCallsPerConnection(maxConcurrentCallsPerConnection)
                .maxRstFramesPerWindow(rapidResetBudget, (int) rapidResetWindow.toSeconds());
        builder.addTransportFilter(new GrpcConnectionAdmission(server, resolved.maxConnections,
                resolved.maxConnectionsPerSource));
        builder.intercept(new CallsPerConnection(maxConcurrentCallsPerConnection));
    }
}
