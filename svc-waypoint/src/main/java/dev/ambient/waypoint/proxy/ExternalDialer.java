package dev.ambient.waypoint.proxy;

import dev.ambient.net.PendingReads;
import dev.ambient.net.Transport;
import dev.ambient.proto.workload.OriginatedTls;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.resolver.ResolvedAddressTypes;
import io.netty.resolver.dns.DnsNameResolver;
import io.netty.resolver.dns.DnsNameResolverBuilder;
import io.netty.resolver.dns.DnsServerAddressStreamProvider;
import io.netty.resolver.dns.DnsServerAddressStreamProviders;
import io.netty.resolver.dns.SequentialDnsServerAddressStreamProvider;
import io.netty.util.NetUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Dials an endpoint outside the mesh (a workload that is no HBONE peer: a ServiceEntry endpoint, a
 * pod not in the mesh) directly, in plain TCP or with TLS originated by {@link TlsOrigination}. A
 * name (ServiceEntry resolution DNS) is resolved when dialled, on the loop, through the configured
 * resolvers (else /etc/resolv.conf's), within {@code dnsTimeout}. Every address is checked by
 * {@link ExternalDestinations} before it is dialled (never loopback or link-local; a resolved name
 * never this host, the mesh itself or a denied network): whoever controls an external name's DNS
 * could otherwise point the waypoint at its own ports, the node's metadata or the mesh's pods.
 */
public final class ExternalDialer implements AutoCloseable {

    private static final String HANDSHAKE_GUARD = "tls-handshake-guard";

    private final Transport transport;
    private final int connectTimeoutMillis;
    private final long dnsTimeoutMillis;
    private final DnsServerAddressStreamProvider nameServers;
    private final TlsOrigination tls;
    private final Map<EventLoop, DnsNameResolver> resolvers = new ConcurrentHashMap<>();
    private final ExternalDestinations destinations;

    /**
     * @param dnsServers resolvers to ask; empty = those of /etc/resolv.conf
     * @param tlsFilesCheck how often the files of a rule's TLS context are checked for changes
     */
    public ExternalDialer(Transport transport, Duration connectTimeout, Duration dnsTimeout,
            List<InetSocketAddress> dnsServers, ExternalDestinations destinations, Duration tlsFilesCheck) {
        this.transport = transport;
        this.destinations = destinations;
        // Reading a rule's files blocks: a virtual thread per build, never an event loop.
        this.tls = new TlsOrigination(tlsFilesCheck, r -> Thread.ofVirtual().name("tls-origination").start(r));
        this.connectTimeoutMillis = (int) connectTimeout.toMillis();
        this.dnsTimeoutMillis = dnsTimeout.toMillis();
        this.nameServers = dnsServers.isEmpty() ? DnsServerAddressStreamProviders.platformDefault()
                : new SequentialDnsServerAddressStreamProvider(dnsServers.toArray(InetSocketAddress[]::new));
    }

    /**
     * Parses resolver addresses: {@code ip}, {@code ip:port} or {@code [ipv6]:port} (port 53 by
     * default); anything else (a name, which would need a resolver itself) stops the start.
     */
    public static List<InetSocketAddress> parseServers(List<String> servers) {
        return servers.stream().map(String::trim).map(s -> {
            String host = s;
            int port = 53;
            if (s.startsWith("[") && s.contains("]")) {
                host = s.substring(1, s.indexOf(']'));
                String rest = s.substring(s.indexOf(']') + 1);
                port = rest.startsWith(":") ? Integer.parseInt(rest.substring(1)) : 53;
            } else if (s.indexOf(':') > 0 && s.indexOf(':') == s.lastIndexOf(':')) {
                host = s.substring(0, s.indexOf(':'));
                port = Integer.parseInt(s.substring(s.indexOf(':') + 1));
            }
            if (!NetUtil.isValidIpV4Address(host) && !NetUtil.isValidIpV6Address(host)) {
                throw new IllegalArgumentException("waypoint.upstream.dns-servers: '" + s
                        + "' is not an IP address (ip, ip:port or [ipv6]:port)");
            }
            return new InetSocketAddress(NetUtil.createInetAddressFromIpAddressString(host), port);
        }).toList();
    }

    /** {@link #dial(Endpoint, EventLoop, boolean)} for a TCP stream (no ALPN). */
    public Future<Channel> dial(Endpoint endpoint, EventLoop loop) {
        return dial(endpoint, loop, false);
    }

    /**
     * A connected channel to the endpoint, on {@code loop}, auto-read off with what it read held in
     * {@link PendingReads}; with TLS originated when the endpoint asks for it, completed once the
     * server proved its name. Fails with an {@link UpstreamFailure} of kind CONNECT saying why, at
     * once when the endpoint's TLS rule is a refusal (an invalid DestinationRule: never in clear).
     *
     * @param http the connection carries HTTP: TLS offers h2 and http/1.1 ({@link #applicationProtocol})
     */
    public Future<Channel> dial(Endpoint endpoint, EventLoop loop, boolean http) {
        Promise<Channel> result = loop.newPromise();
        OriginatedTls origination = endpoint.tls();
        if (origination != null && !origination.getRefusal().isEmpty()) {
            failLater(loop, result, failure(endpoint, "refused: " + origination.getRefusal()));
            return result;
        }
        // The context is made (off the loop) while the name resolves and the socket connects.
        Future<SslContext> context = origination == null ? null : tls.context(origination, http, loop);
        if (endpoint.address() != null) {
            connect(endpoint, endpoint.address(), false, loop, context, result);
            return result;
        }
        String name = endpoint.hostname();
        Future<InetAddress> resolving = resolver(loop).resolve(name);
        var timeout = loop.schedule(() -> result.tryFailure(failure(endpoint, "cannot resolve " + name
                + " within " + dnsTimeoutMillis + " ms")), dnsTimeoutMillis, TimeUnit.MILLISECONDS);
        resolving.addListener(f -> {
            timeout.cancel(false);
            if (result.isDone()) {
                return;
            }
            if (!f.isSuccess()) {
                result.tryFailure(failure(endpoint, "cannot resolve " + name + ": " + f.cause().getMessage()));
                return;
            }
            connect(endpoint, (InetAddress) f.getNow(), true, loop, context, result);
        });
        return result;
    }

    /** The protocol ALPN chose for TLS originated on {@code ch} ("h2", "http/1.1"); null without TLS or ALPN. */
    public static String applicationProtocol(Channel ch) {
        SslHandler ssl = ch.pipeline().get(SslHandler.class);
        return ssl == null ? null : ssl.applicationProtocol();
    }

    private void connect(Endpoint endpoint, InetAddress address, boolean resolved, EventLoop loop,
            Future<SslContext> context, Promise<Channel> result) {
        Optional<String> refusal = destinations.refusal(address, resolved);
        if (refusal.isPresent()) {
            failLater(loop, result, failure(endpoint, "refused: " + refusal.get()));
            return;
        }
        InetSocketAddress target = new InetSocketAddress(address, endpoint.port());
        OriginatedTls origination = endpoint.tls();
        String serverName = origination == null ? null
                : TlsOrigination.serverName(origination, endpoint.hostname() != null ? endpoint.hostname()
                        : address.getHostAddress());
        ChannelFuture connecting = new Bootstrap().group(loop).channel(transport.socketChannel())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, connectTimeoutMillis)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(512 << 10, 1 << 20))
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        PendingReads.install(ch, 4L << 20);
                    }
                }).connect(target);
        // A failure or a give-up from outside (a timeout) closes what was opened.
        result.addListener(f -> {
            if (!f.isSuccess()) {
                connecting.channel().close();
            }
        });
        connecting.addListener((ChannelFuture f) -> {
            if (!f.isSuccess()) {
                result.tryFailure(failure(endpoint, "connect to " + target + " failed: " + f.cause().getMessage()));
                return;
            }
            Channel ch = f.channel();
            if (origination == null) {
                result.trySuccess(ch);
                return;
            }
            context.addListener(c -> {
                if (!c.isSuccess()) {
                    result.tryFailure(failure(endpoint, "TLS origination (" + origination.getSource() + "): "
                            + c.cause().getMessage()));
                } else if (!result.isDone()) {
                    handshake(endpoint, ch, (SslContext) c.getNow(), origination, serverName, target, result);
                }
            });
        });
    }

    private void handshake(Endpoint endpoint, Channel ch, SslContext context, OriginatedTls origination,
            String serverName, InetSocketAddress target, Promise<Channel> result) {
        SslHandler ssl = TlsOrigination.handler(context, origination, serverName, endpoint.port(), ch.alloc());
        ssl.setHandshakeTimeoutMillis(connectTimeoutMillis);
        ch.pipeline().addFirst("tls-origination", ssl);
        // A failed handshake is reported once, below; not again as an exception nobody handled.
        ch.pipeline().addLast(HANDSHAKE_GUARD, new ChannelInboundHandlerAdapter() {
            @Override
            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                ctx.close();
            }
        });
        ssl.handshakeFuture().addListener(h -> {
            if (h.isSuccess()) {
                ch.pipeline().remove(HANDSHAKE_GUARD);
                result.trySuccess(ch);
            } else {
                result.tryFailure(failure(endpoint, "TLS origination to " + serverName + " at " + target
                        + " (" + origination.getSource() + ") failed: " + rootMessage(h.cause())));
                ch.close();
            }
        });
    }

    private DnsNameResolver resolver(EventLoop loop) {
        return resolvers.computeIfAbsent(loop, l -> new DnsNameResolverBuilder(l)
                .datagramChannelType(datagramChannel())
                .queryTimeoutMillis(dnsTimeoutMillis)
                .resolvedAddressTypes(ResolvedAddressTypes.IPV4_PREFERRED)
                .nameServerProvider(nameServers)
                .build());
    }

    private Class<? extends DatagramChannel> datagramChannel() {
        return transport.isNative() ? EpollDatagramChannel.class : NioDatagramChannel.class;
    }

    /** A dial never fails before it returns: its caller has yet to listen. */
    private static void failLater(EventLoop loop, Promise<Channel> result, UpstreamFailure failure) {
        loop.execute(() -> result.tryFailure(failure));
    }

    private static UpstreamFailure failure(Endpoint endpoint, String why) {
        return new UpstreamFailure(UpstreamFailure.Kind.CONNECT, "to " + endpoint.describe() + " (outside the mesh): "
                + why);
    }

    private static String rootMessage(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root.getMessage() == null ? root.toString() : root.getMessage();
    }

    @Override
    public void close() {
        resolvers.values().forEach(DnsNameResolver::close);
        resolvers.clear();
    }
}
