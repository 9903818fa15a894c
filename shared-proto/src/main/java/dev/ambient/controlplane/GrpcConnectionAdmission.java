package dev.ambient.controlplane;

import dev.ambient.hbone.BoundedCounts;
import io.grpc.Attributes;
import io.grpc.Grpc;
import io.grpc.ServerTransportFilter;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * How many connections a control-plane gRPC server holds, in all and from one IP address. Counted
 * from the client's first HTTP/2 SETTINGS (grpc-java's "transport ready": TLS and preface done) to
 * the close; before that, {@link HandshakingConnections} counts it, and Quarkus's
 * {@code handshake-timeout} bounds its life. One more
 * gets GOAWAY(ENHANCE_YOUR_CALM) and is closed: grpc-java offers no way to refuse a transport, so
 * {@link #transportReady} throws an {@link Http2Exception}, which its HTTP/2 handler turns into
 * that GOAWAY (a grpc-java client reports UNAVAILABLE and retries with backoff).
 *
 * <p>An admitted transport also gets the count of its open calls, which {@link CallAdmission} bounds.
 *
 * <p>Refusals can come by the thousand: each counted, at most one log line every 10 s per bound
 * ({@link RefusalLog}).
 * Thread-safe: transports of every event loop report here.
 */
final class GrpcConnectionAdmission extends ServerTransportFilter {

    /** Set on an admitted transport: the address its place is counted for. */
    private static final Attributes.Key<InetAddress> ADMITTED = Attributes.Key.create("control-plane admitted source");

    private final String server;
    private final int maxConnections;
    private final AtomicInteger connections = new AtomicInteger();
    private final BoundedCounts<InetAddress> perSource;
    private final RefusalLog overTotal = new RefusalLog(GrpcConnectionAdmission.class, "connections");
    private final RefusalLog overShare = new RefusalLog(GrpcConnectionAdmission.class, "connections_per_source");

    private final HandshakingConnections handshaking;

    GrpcConnectionAdmission(String server, int maxConnections, int maxConnectionsPerSource,
            HandshakingConnections handshaking) {
        this.server = server;
        this.handshaking = handshaking;
        this.maxConnections = maxConnections;
        this.perSource = new BoundedCounts<>(maxConnectionsPerSource);
    }

    @Override
    public Attributes transportReady(Attributes attributes) {
        handshaking.ready(attributes); // ready or refused here, it no longer counts as handshaking
        SocketAddress remote = attributes.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        if (!(remote instanceof InetSocketAddress inet)) {
            return attributes; // not a TCP peer (in-process tests): nothing to count
        }
        InetAddress source = inet.getAddress();
        int held = connections.getAndUpdate(n -> n < maxConnections ? n + 1 : n);
        if (held >= maxConnections) {
            throw refuse(overTotal, remote, "too many connections", "the server holds " + held
                    + " connections, its bound (control-plane.grpc.max-connections)");
        }
        if (!perSource.tryAcquire(source)) {
            connections.decrementAndGet();
            throw refuse(overShare, remote, "too many connections from " + source.getHostAddress(), perSource.bound()
                    + " connections from this address are open, its bound (control-plane.grpc.max-connections-per-source)");
        }
        return attributes.toBuilder().set(ADMITTED, source).set(CallAdmission.OPEN_CALLS, new AtomicInteger()).build();
    }

    @Override
    public void transportTerminated(Attributes attributes) {
        InetAddress source = attributes == null ? null : attributes.get(ADMITTED);
        if (source != null) { // null: refused, or closed before its SETTINGS; it held no place
            perSource.release(source);
            connections.decrementAndGet();
        }
    }

    /** Connections held now. */
    int connections() {
        return connections.get();
    }

    private RuntimeException refuse(RefusalLog log, SocketAddress remote, String goAwayDebug, String why) {
        log.refused(server + ": connection from " + remote + " refused: " + why + "; GOAWAY(ENHANCE_YOUR_CALM)");
        // grpc-java's HTTP/2 handler finds the Http2Exception among the causes: GOAWAY with its code and message
        return new IllegalStateException(goAwayDebug, new Http2Exception(Http2Error.ENHANCE_YOUR_CALM, goAwayDebug));
    }
}
