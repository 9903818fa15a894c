package dev.ambient.waypoint.extauthz;

import dev.ambient.controlplane.RefusalLog;
import dev.ambient.hbone.ConnectionPool;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.PoolKey;
import dev.ambient.hbone.RelayObserver;
import dev.ambient.hbone.TunnelRelay;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.Transport;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.waypoint.identity.WaypointIdentity;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * Carries our authorizer clients' connections to mesh authorizers through HBONE: a listener on
 * loopback (an ephemeral port) that takes an HTTP CONNECT (grpc-java) or a SOCKS5 CONNECT
 * (vertx-web-client) and opens, for each, one HBONE stream to the target's node port 15008 with
 * the waypoint's certificate, the peer made to prove the SPIFFE id svc-xds gave for that endpoint
 * (as every HBONE upstream), then relays bytes with backpressure both ways ({@link TunnelRelay}).
 *
 * <p>As a listener: anything in the waypoint pod's network namespace can reach it, and it would
 * make us speak to a mesh workload as the waypoint, so it opens tunnels only to the HBONE
 * endpoints of the ext_authz providers in the current configuration (anything else is refused with
 * one log line), resolves no names, and is bounded: a handshake and its tunnel must be up within
 * the connect timeout, at most {@code maxTunnels} connections at once (beyond, closed at accept),
 * a connection idle either way for {@code idleTimeout} is closed, a handshake is at most 8 KiB.
 * Every refusal counts in {@code waypoint_ext_authz_bridge_refusals_total{reason}}; its log line is
 * written at most once every 10 s per reason, since anything local can make refusals by the thousand.
 */
public final class MeshAuthorizerBridge implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(MeshAuthorizerBridge.class);

    /** Bounds of the bridge. */
    public record Limits(int maxTunnels, Duration connectTimeout, Duration idleTimeout) {
    }

    /** The HBONE endpoints of a configuration's providers, with the identity each must prove. */
    private record Allowed(WaypointState state, Map<InetSocketAddress, SpiffeId> endpoints) {
    }

    private final ConnectionPool pool;
    private final WaypointIdentity identity;
    private final int hbonePort;
    private final Supplier<WaypointState> states;
    private final Limits limits;
    private final AtomicInteger open = new AtomicInteger();
    private final Map<ProxyHandshake.Refusal, RefusalLog> refusals = new EnumMap<>(ProxyHandshake.Refusal.class);
    private volatile Allowed allowed;
    private final Channel server;

    /** Binds 127.0.0.1 on an ephemeral port, on the data plane's transport (where the HBONE pool lives). */
    public MeshAuthorizerBridge(Transport transport, ConnectionPool pool, WaypointIdentity identity, int hbonePort,
            Supplier<WaypointState> states, Limits limits, MeterRegistry registry) {
        for (ProxyHandshake.Refusal why : ProxyHandshake.Refusal.values()) {
            refusals.put(why, new RefusalLog(MeshAuthorizerBridge.class, Counter.builder(
                    "waypoint_ext_authz_bridge_refusals_total").tag("reason", why.name().toLowerCase(java.util.Locale.ROOT))
                    .description("Connections the ext_authz bridge refused, by why").register(registry)));
        }
        this.pool = pool;
        this.identity = identity;
        this.hbonePort = hbonePort;
        this.states = states;
        this.limits = limits;
        this.server = transport.listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        accept(ch);
                    }
                });
    }

    /** Where our clients send their CONNECTs. */
    public InetSocketAddress address() {
        return (InetSocketAddress) server.localAddress();
    }

    /** Connections carried now. */
    public int openConnections() {
        return open.get();
    }

    private void accept(Channel ch) {
        if (open.incrementAndGet() > limits.maxTunnels()) {
            open.decrementAndGet();
            refusals.get(ProxyHandshake.Refusal.BUSY).refused("ext_authz bridge: " + limits.maxTunnels()
                    + " connections already (waypoint.ext-authz.max-tunnels); closing new ones");
            ch.close();
            return;
        }
        ch.closeFuture().addListener(f -> open.decrementAndGet());
        Handshake handshake = new Handshake();
        ch.pipeline().addLast("handshake", handshake);
        ch.eventLoop().schedule(() -> {
            if (!handshake.relaying && ch.isOpen()) {
                LOG.infof("ext_authz bridge: %s: no tunnel within %s, closed", ch.remoteAddress(), limits.connectTimeout());
                ch.close();
            }
        }, limits.connectTimeout().toMillis(), TimeUnit.MILLISECONDS);
    }

    private IdleStateHandler idleClose() {
        return new IdleStateHandler(0, 0, limits.idleTimeout().toMillis(), TimeUnit.MILLISECONDS) {
            @Override
            protected void channelIdle(ChannelHandlerContext ctx, IdleStateEvent evt) {
                LOG.debugf("ext_authz bridge: %s idle for %s, closed", ctx.channel().remoteAddress(), limits.idleTimeout());
                ctx.close();
            }
        };
    }

    /** The identity an endpoint must prove, if it is an HBONE endpoint of a provider in the current configuration. */
    Optional<SpiffeId> expectedAt(InetSocketAddress target) {
        WaypointState state = states.get();
        Allowed a = allowed;
        if (a == null || a.state() != state) {
            a = new Allowed(state, index(state));
            allowed = a;
        }
        return Optional.ofNullable(a.endpoints().get(target));
    }

    private static Map<InetSocketAddress, SpiffeId> index(WaypointState state) {
        Map<InetSocketAddress, SpiffeId> out = new HashMap<>();
        for (L7Authorization policy : state.policies()) {
            policy.getProvider().getHboneIdentitiesMap().forEach((endpoint, id) -> {
                try {
                    Target t = Target.parse(endpoint);
                    out.put(new InetSocketAddress(InetAddress.ofLiteral(t.host()), t.port()), SpiffeId.parse(id));
                } catch (RuntimeException e) {
                    // Never carried: ExtAuthz fails the check for it; svc-xds never writes one.
                    LOG.debugf("ext_authz provider %s: HBONE endpoint %s / %s unusable: %s",
                            policy.getProvider().getName(), endpoint, id, e.getMessage());
                }
            });
        }
        return Map.copyOf(out);
    }

    /** Reads one proxy handshake, then hands the connection to an HBONE stream. */
    private final class Handshake extends ChannelInboundHandlerAdapter {

        private ByteBuf received;
        private boolean greeted;
        private boolean decided;
        volatile boolean relaying;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf in = (ByteBuf) msg;
            if (decided) {
                in.release(); // bytes before the tunnel was granted: the refusal or grant decides them
                return;
            }
            if (received == null) {
                received = ctx.alloc().buffer(256);
            }
            received.writeBytes(in);
            in.release();
            for (;;) {
                ProxyHandshake.Step step = ProxyHandshake.parse(received, greeted);
                switch (step) {
                    case ProxyHandshake.More m -> {
                        if (received.readableBytes() > ProxyHandshake.MAX_BYTES) {
                            refuse(ctx, null, ProxyHandshake.Refusal.BAD_REQUEST, null,
                                    "handshake longer than " + ProxyHandshake.MAX_BYTES + " bytes");
                        }
                        return;
                    }
                    case ProxyHandshake.Greeting g -> {
                        received.skipBytes(g.consumed());
                        greeted = true;
                        ctx.writeAndFlush(ProxyHandshake.socksMethodAccepted());
                    }
                    case ProxyHandshake.Bad b -> {
                        refuse(ctx, b.protocol(), ProxyHandshake.Refusal.BAD_REQUEST, null, b.reason());
                        return;
                    }
                    case ProxyHandshake.Connect c -> {
                        received.skipBytes(c.consumed());
                        connect(ctx, c);
                        return;
                    }
                }
            }
        }

        private void connect(ChannelHandlerContext ctx, ProxyHandshake.Connect c) {
            decided = true;
            if (received.isReadable()) {
                refuse(ctx, c.protocol(), ProxyHandshake.Refusal.BAD_REQUEST, c.target(),
                        "data sent before the tunnel was granted");
                return;
            }
            Optional<SpiffeId> expected = expectedAt(c.target());
            if (expected.isEmpty()) {
                refuse(ctx, c.protocol(), ProxyHandshake.Refusal.NOT_ALLOWED, c.target(),
                        "not an HBONE endpoint of any ext_authz provider in the configuration");
                return;
            }
            WaypointIdentity.TlsMaterial tls = identity.current();
            if (tls == null) {
                refuse(ctx, c.protocol(), ProxyHandshake.Refusal.UNREACHABLE, c.target(), "the waypoint has no certificate yet");
                return;
            }
            Channel ch = ctx.channel();
            // From here the bytes wait in a bounded holder until the relay replays them.
            TunnelRelay.holdReads(ch);
            PoolKey key = new PoolKey(identity.id(), new InetSocketAddress(c.target().getAddress(), hbonePort),
                    Set.of(expected.get()));
            pool.open(key, tls.client(), HboneHeaders.connect(c.target(), null, null), null, ch.eventLoop())
                    .addListener(f -> ch.eventLoop().execute(() -> {
                        if (!f.isSuccess()) {
                            refuse(ctx, c.protocol(), ProxyHandshake.Refusal.UNREACHABLE, c.target(),
                                    "HBONE to " + key.destination() + " as " + expected.get().uri() + ": "
                                            + f.cause().getMessage());
                            return;
                        }
                        Http2StreamChannel stream = (Http2StreamChannel) f.getNow();
                        if (!ch.isActive()) {
                            stream.close();
                            return;
                        }
                        relaying = true;
                        ch.writeAndFlush(ProxyHandshake.granted(c.protocol()));
                        ch.pipeline().remove(this);
                        // Added only now: the held reads' replay is what it must see (it would
                        // take a read whose completion the holder swallowed for a read never ending).
                        ch.pipeline().addLast("idle", idleClose());
                        TunnelRelay.start(stream, ch, RelayObserver.NONE);
                    }));
        }

        private void refuse(ChannelHandlerContext ctx, ProxyHandshake.Protocol protocol, ProxyHandshake.Refusal why,
                InetSocketAddress target, String reason) {
            decided = true;
            refusals.get(why).refused(String.format("ext_authz bridge: refused %s%s from %s: %s",
                    protocol == null ? "a connection" : protocol + " CONNECT",
                    target == null ? "" : " to " + target.getAddress().getHostAddress() + ":" + target.getPort(),
                    ctx.channel().remoteAddress(), reason));
            ctx.writeAndFlush(ProxyHandshake.refusal(protocol, why)).addListener(ChannelFutureListener.CLOSE);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            // A FIN before the tunnel is up: the client gave up (half-closure is on for relaying).
            if (evt instanceof ChannelInputShutdownEvent && !decided) {
                ctx.close();
                return;
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            if (received != null) {
                received.release();
                received = null;
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.debugf("ext_authz bridge: %s: %s", ctx.channel().remoteAddress(), cause.toString());
            ctx.close();
        }
    }

    @Override
    public void close() {
        server.close();
    }
}
