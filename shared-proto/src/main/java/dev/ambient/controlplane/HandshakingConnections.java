package dev.ambient.controlplane;

import dev.ambient.hbone.BoundedCounts;
import io.grpc.Attributes;
import io.grpc.Grpc;
import io.grpc.netty.GrpcHttp2ConnectionHandler;
import io.grpc.netty.InternalProtocolNegotiator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.AsciiString;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * How many connections a control-plane gRPC server holds before they are ready, in all and from one
 * IP address: counted from accept to the client's first HTTP/2 SETTINGS (where
 * {@link GrpcConnectionAdmission} takes over) or the close. Until then only Quarkus's
 * {@code handshake-timeout} bounded them, in time, not in number: a pod that opens thousands of
 * TCP connections and sends nothing (or a ClientHello byte by byte) held a file descriptor, a
 * channel and an SSL engine each, and could run the server out of descriptors, so that accept
 * failed for every proxy.
 *
 * <p>It wraps the server's TLS protocol negotiator: grpc-java adds a connection's negotiation
 * handler right after accept, before anything is read, so one more connection than a bound is
 * closed there, before an SSL engine is made. Refusals counted and logged as
 * {@link GrpcConnectionAdmission}'s are ({@link RefusalLog}). Thread-safe.
 */
final class HandshakingConnections {

    /** One connection still handshaking: the same pair grpc-java reports at transport-ready. */
    private record Endpoints(SocketAddress remote, SocketAddress local) {}

    private final String server;
    private final int maxConnections;
    private final AtomicInteger connections = new AtomicInteger();
    private final BoundedCounts<InetAddress> perSource;
    /** The source each handshaking connection is counted for; removed once, at ready or close. */
    private final Map<Endpoints, InetAddress> handshaking = new ConcurrentHashMap<>();
    private final RefusalLog overTotal = new RefusalLog(HandshakingConnections.class, "handshaking_connections");
    private final RefusalLog overShare = new RefusalLog(HandshakingConnections.class,
            "handshaking_connections_per_source");

    HandshakingConnections(String server, int maxConnections, int maxConnectionsPerSource) {
        this.server = server;
        this.maxConnections = maxConnections;
        this.perSource = new BoundedCounts<>(maxConnectionsPerSource);
    }

    /** {@code tls} (grpc-java's server TLS negotiator), admitting each connection first. */
    InternalProtocolNegotiator.ProtocolNegotiator around(InternalProtocolNegotiator.ProtocolNegotiator tls) {
        return new InternalProtocolNegotiator.ProtocolNegotiator() {
            @Override
            public AsciiString scheme() {
                return tls.scheme();
            }

            @Override
            public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpcHandler) {
                return new Admission(tls.newHandler(grpcHandler));
            }

            @Override
            public void close() {
                tls.close();
            }
        };
    }

    /** The connection grpc-java reports ready is no longer handshaking (called from its transport filter). */
    void ready(Attributes transport) {
        SocketAddress remote = transport.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        SocketAddress local = transport.get(Grpc.TRANSPORT_ATTR_LOCAL_ADDR);
        if (remote != null && local != null) {
            release(new Endpoints(remote, local));
        }
    }

    /** Connections handshaking now. */
    int connections() {
        return connections.get();
    }

    private boolean admit(Channel channel) {
        if (!(channel.remoteAddress() instanceof InetSocketAddress remote)) {
            return true; // not a TCP peer: nothing to count
        }
        InetAddress source = remote.getAddress();
        int held = connections.getAndUpdate(n -> n < maxConnections ? n + 1 : n);
        if (held >= maxConnections) {
            overTotal.refused(server + ": connection from " + remote + " closed at accept: " + held
                    + " connections are handshaking, the bound (control-plane.grpc.max-handshaking-connections)");
            return false;
        }
        if (!perSource.tryAcquire(source)) {
            connections.decrementAndGet();
            overShare.refused(server + ": connection from " + remote + " closed at accept: " + perSource.bound()
                    + " connections from this address are handshaking, the bound"
                    + " (control-plane.grpc.max-handshaking-connections-per-source)");
            return false;
        }
        Endpoints endpoints = new Endpoints(remote, channel.localAddress());
        handshaking.put(endpoints, source);
        channel.closeFuture().addListener(closed -> release(endpoints));
        return true;
    }

    private void release(Endpoints endpoints) {
        InetAddress source = handshaking.remove(endpoints);
        if (source != null) { // null: released already (ready, then closed)
            perSource.release(source);
            connections.decrementAndGet();
        }
    }

    /** First in a new connection's pipeline: admits it and gives way to TLS, or closes it. */
    private final class Admission extends ChannelInboundHandlerAdapter {

        private final ChannelHandler tls;

        Admission(ChannelHandler tls) {
            this.tls = tls;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            if (admit(ctx.channel())) {
                ctx.pipeline().replace(this, null, tls);
            } else {
                ctx.close();
            }
        }
    }
}
