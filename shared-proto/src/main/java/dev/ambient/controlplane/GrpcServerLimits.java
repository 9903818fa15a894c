package dev.ambient.controlplane;

import dev.ambient.hbone.HboneAdmission;
import io.grpc.netty.InternalProtocolNegotiators;
import io.netty.handler.ssl.SslContext;
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
 * @param maxHandshakingConnections connections from accept to the client's first SETTINGS (TLS and
 *        preface not yet done) the server holds at once; one more is closed at accept, before any
 *        TLS work; 0: automatic, see {@link #resolve}
 * @param maxHandshakingConnectionsPerSource of those, from one IP address; 0: automatic, a quarter
 *        of {@code maxHandshakingConnections}
 * @param maxConnectionAge a connection this old gets GOAWAY (grpc-java adds up to 10% jitter), so
 *        that clients spread over replicas added since they connected (xDS scaled out)
 * @param maxConnectionAgeGrace after that GOAWAY, how long calls still open may go on before the
 *        connection is closed: a discovery stream never ends by itself, so this only lets a unary
 *        call (a CSR) finish; the stream is then cut and its client resubscribes elsewhere
 */
public record GrpcServerLimits(Duration maxConnectionIdle, int maxConcurrentCallsPerConnection, int rapidResetBudget,
        Duration rapidResetWindow, int maxConnections, int maxConnectionsPerSource, int maxCalls,
        int maxCallsPerSource, int maxHandshakingConnections, int maxHandshakingConnectionsPerSource,
        Duration maxConnectionAge, Duration maxConnectionAgeGrace) {

    private static final Logger LOG = Logger.getLogger(GrpcServerLimits.class);

    static final String PREFIX = "control-plane.grpc.";

    public static final GrpcServerLimits DEFAULTS = new GrpcServerLimits(Duration.ofMinutes(5), 100, 200,
            Duration.ofSeconds(30), 0, 0, 0, 0, 0, 0, Duration.ofMinutes(30), Duration.ofSeconds(10));

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
        if (maxConnectionAge.isNegative() || maxConnectionAge.isZero() || maxConnectionAgeGrace.isNegative()) {
            throw new IllegalArgumentException(PREFIX + "max-connection-age must be positive, max-connection-age-grace"
                    + " not negative");
        }
        if (maxConnections < 0 || maxConnectionsPerSource < 0 || maxCalls < 0 || maxCallsPerSource < 0
                || maxHandshakingConnections < 0 || maxHandshakingConnectionsPerSource < 0) {
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
                        .orElse(DEFAULTS.maxCallsPerSource),
                config.getOptionalValue(PREFIX + "max-handshaking-connections", Integer.class)
                        .orElse(DEFAULTS.maxHandshakingConnections),
                config.getOptionalValue(PREFIX + "max-handshaking-connections-per-source", Integer.class)
                        .orElse(DEFAULTS.maxHandshakingConnectionsPerSource),
                config.getOptionalValue(PREFIX + "max-connection-age", Duration.class).orElse(DEFAULTS.maxConnectionAge),
                config.getOptionalValue(PREFIX + "max-connection-age-grace", Duration.class)
                        .orElse(DEFAULTS.maxConnectionAgeGrace));
    }

    /**
     * The automatic bounds made concrete for a process: {@code maxConnections} half its file
     * descriptors, and no more than its heap holds at {@link #HEAP_PER_CONNECTION} each;
     * {@code maxCalls} one per {@link #HEAP_PER_CALL} of heap; each per-source bound half of its
     * total. A share, not a tight fit: an address may stand for many clients (proxies of a remote
     * cluster through one gateway, nodes behind SNAT), while no address may hold more than all the
     * others can still open. {@code maxHandshakingConnections} a quarter of the descriptors and of
     * what the heap holds at {@link #HEAP_PER_CONNECTION} each (an SSL engine mid-handshake is no
     * cheaper), so ready and handshaking connections together leave a quarter of the descriptors
     * for the rest of the process; its per-source bound a quarter of it: a handshake lasts
     * milliseconds, so even a gateway of many clients rarely has many at once, and an attacker
     * needs four addresses, not two, to make new clients wait for the handshake timeout.
     */
    public GrpcServerLimits resolve(long maxFds, long maxHeap) {
        int connections = maxConnections > 0 ? maxConnections : automatic(Math.min(maxFds / 2, maxHeap / HEAP_PER_CONNECTION));
        int calls = maxCalls > 0 ? maxCalls : automatic(maxHeap / HEAP_PER_CALL);
        int handshaking = maxHandshakingConnections > 0 ? maxHandshakingConnections
                : automatic(Math.min(maxFds / 4, maxHeap / HEAP_PER_CONNECTION / 4));
        return new GrpcServerLimits(maxConnectionIdle, maxConcurrentCallsPerConnection, rapidResetBudget,
                rapidResetWindow, connections, maxConnectionsPerSource > 0 ? maxConnectionsPerSource : half(connections),
                calls, maxCallsPerSource > 0 ? maxCallsPerSource : half(calls), handshaking,
                maxHandshakingConnectionsPerSource > 0 ? maxHandshakingConnectionsPerSource : Math.max(1, handshaking / 4),
                maxConnectionAge, maxConnectionAgeGrace);
    }

    private static int automatic(long bound) {
        return (int) Math.min(Integer.MAX_VALUE, Math.max(MIN_AUTOMATIC, bound));
    }

    private static int half(int bound) {
        return Math.max(1, bound / 2);
    }

    /**
     * Applies these limits, resolved for this process (logged once), to a server being built, which
     * serves TLS with {@code tls}: through grpc-java's own TLS negotiator, wrapped in
     * {@link HandshakingConnections} (the only place a connection can be refused before its TLS).
     */
    void applyTo(VertxServerBuilder builder, SslContext tls, String server) {
        long fds = HboneAdmission.maxFileDescriptors();
        GrpcServerLimits resolved = resolve(fds, Runtime.getRuntime().maxMemory());
        LOG.infof("%s: at most %d connections (%s), %d per source address; %d handshaking (%s), %d per source address;"
                + " %d open calls (%s), %d per source address, %d per connection; idle connections closed after %s,"
                + " all after %s (grace %s); GOAWAY beyond %d stream resets per %d s (RLIMIT_NOFILE %s, max heap %d MiB)",
                server, resolved.maxConnections, maxConnections > 0 ? "configured" : "automatic",
                resolved.maxConnectionsPerSource, resolved.maxHandshakingConnections,
                maxHandshakingConnections > 0 ? "configured" : "automatic", resolved.maxHandshakingConnectionsPerSource,
                resolved.maxCalls, maxCalls > 0 ? "configured" : "automatic", resolved.maxCallsPerSource,
                maxConcurrentCallsPerConnection, maxConnectionIdle, maxConnectionAge, maxConnectionAgeGrace,
                rapidResetBudget, rapidResetWindow.toSeconds(), fds == Long.MAX_VALUE ? "unknown" : fds,
                Runtime.getRuntime().maxMemory() >> 20);
        HandshakingConnections handshaking = new HandshakingConnections(server, resolved.maxHandshakingConnections,
                resolved.maxHandshakingConnectionsPerSource);
        builder.nettyBuilder()
                .protocolNegotiator(handshaking.around(InternalProtocolNegotiators.serverTls(tls)))
                .maxConnectionIdle(maxConnectionIdle.toNanos(), TimeUnit.NANOSECONDS)
                .maxConnectionAge(maxConnectionAge.toNanos(), TimeUnit.NANOSECONDS)
                .maxConnectionAgeGrace(maxConnectionAgeGrace.toNanos(), TimeUnit.NANOSECONDS)
                .maxConcurrentCallsPerConnection(maxConcurrentCallsPerConnection)
                .maxRstFramesPerWindow(rapidResetBudget, (int) rapidResetWindow.toSeconds());
        builder.addTransportFilter(new GrpcConnectionAdmission(server, resolved.maxConnections,
                resolved.maxConnectionsPerSource, handshaking));
        builder.intercept(new CallAdmission(server, maxConcurrentCallsPerConnection, resolved.maxCalls,
                resolved.maxCallsPerSource));
    }
}
