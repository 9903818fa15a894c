package dev.ambient.ztunnel.inbound;

import dev.ambient.net.PendingReads;
import dev.ambient.net.SocketMark;
import dev.ambient.net.Transport;
import dev.ambient.ztunnel.inpod.SocketNamespace;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetAddress;
import java.net.InetSocketAddress;

/**
 * Dials a local workload for an accepted inbound connection, from the client's own address where
 * it can be had, so the application sees the real client as it would without the mesh: in
 * standalone mode on loopback (any loopback address is ours to bind); in-pod with a transparent
 * socket (IP_TRANSPARENT) bound to the client's address inside the pod's namespace, whose replies
 * the node agent's reply routing brings back to it. The client's address is the one the caller
 * verified (the connection's source, or the destination's own waypoint's {@code Forwarded}), never
 * anything else a peer sends. In-pod, the socket is created inside the pod's network namespace and
 * marked, so the pod's capture rules let it pass.
 */
public final class WorkloadDialer {

    /** Where a connection to the application comes from. */
    public sealed interface Source {
        /** The kernel picks: the pod's (or the node's) own address. */
        record Own() implements Source {
        }

        /** A local address, bound as is (loopback, standalone). */
        record Local(InetAddress address) implements Source {
        }

        /** The client's address, not the pod's: bound with IP_TRANSPARENT (in-pod). */
        record Transparent(InetAddress address) implements Source {
        }
    }

    private final Transport transport;
    private final boolean preserveSourceIp;
    /** In-pod: whether the agent installs the pod's reply routing now (its latest Add said so). */
    private final java.util.function.BooleanSupplier transparent;
    private final int connectTimeoutMillis;
    private final int socketMark;
    private final SocketNamespace netns;
    private final SourceFallbacks fallbacks;

    public WorkloadDialer(Transport transport, boolean preserveSourceIp, int connectTimeoutMillis, int socketMark) {
        this(transport, preserveSourceIp, connectTimeoutMillis, socketMark, SocketNamespace.HOST, () -> false, null);
    }

    private WorkloadDialer(Transport transport, boolean preserveSourceIp, int connectTimeoutMillis, int socketMark,
            SocketNamespace netns, java.util.function.BooleanSupplier transparent, SourceFallbacks fallbacks) {
        this.transport = transport;
        this.preserveSourceIp = preserveSourceIp;
        this.connectTimeoutMillis = connectTimeoutMillis;
        this.socketMark = socketMark;
        this.netns = netns;
        this.transparent = transparent;
        this.fallbacks = fallbacks;
    }

    /**
     * In a pod's namespace: with {@code preserveSourceIp} and while {@code replyRouting} says the agent
     * installs the pod's reply routing, from the client's address (IP_TRANSPARENT); where that cannot
     * be bound, from the pod's own, reported to {@code fallbacks}. Without reply routing, from the
     * pod's own address (not a fallback: the application's replies would not come back).
     */
    public static WorkloadDialer inPod(Transport transport, boolean preserveSourceIp,
            java.util.function.BooleanSupplier replyRouting, int connectTimeoutMillis, int socketMark,
            SocketNamespace netns, SourceFallbacks fallbacks) {
        boolean possible = preserveSourceIp && transport.isNative();
        return new WorkloadDialer(transport, preserveSourceIp, connectTimeoutMillis, socketMark, netns,
                () -> possible && replyRouting.getAsBoolean(), fallbacks);
    }

    /**
     * Whether a connection to {@code target} can leave from the client's own address: where it can be
     * bound, i.e. loopback addresses in standalone mode (a real pod's address is not ours to bind).
     */
    public static boolean keepsSource(boolean preserveSourceIp, InetSocketAddress client, InetSocketAddress target) {
        return preserveSourceIp && client != null && client.getAddress().isLoopbackAddress()
                && target.getAddress().isLoopbackAddress() && !client.getAddress().equals(target.getAddress());
    }

    /** Where the connection from {@code client} to {@code target} comes from. */
    Source source(InetSocketAddress client, InetSocketAddress target) {
        if (keepsSource(preserveSourceIp, client, target)) {
            return new Source.Local(client.getAddress());
        }
        if (!transparent.getAsBoolean() || client == null) {
            return new Source.Own();
        }
        InetAddress ip = client.getAddress();
        // Loopback, wildcard or the pod's own address: nothing to preserve (and loopback could not
        // leave for the pod's address anyway); another family cannot be bound to this connection.
        if (ip.isLoopbackAddress() || ip.isAnyLocalAddress() || ip.isMulticastAddress()
                || ip.equals(target.getAddress()) || ip.getClass() != target.getAddress().getClass()) {
            return new Source.Own();
        }
        return new Source.Transparent(ip);
    }

    /** The connected channel holds what the workload sends first until a relay takes it. Completes on {@code loop}. */
    public Future<Channel> dial(EventLoop loop, InetSocketAddress target, InetSocketAddress client) {
        Promise<Channel> dialled = loop.newPromise();
        Source source = source(client, target);
        dial(loop, target, source).addListener(f -> {
            if (f.isSuccess()) {
                dialled.trySuccess((Channel) f.getNow());
            } else if (source instanceof Source.Transparent t && bindFailed(f.cause())) {
                // The client's address could not be bound (no CAP_NET_ADMIN for IP_TRANSPARENT, say):
                // the application gets the connection from the pod's address, and the operator is told.
                fallbacks.fellBack(netns.name(), t.address(), f.cause());
                dial(loop, target, new Source.Own()).addListener(g -> {
                    if (g.isSuccess()) {
                        dialled.trySuccess((Channel) g.getNow());
                    } else {
                        dialled.tryFailure(g.cause());
                    }
                });
            } else {
                dialled.tryFailure(f.cause());
            }
        });
        return dialled;
    }

    private Future<Channel> dial(EventLoop loop, InetSocketAddress target, Source source) {
        Bootstrap b = new Bootstrap().group(loop)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, connectTimeoutMillis)
                .option(ChannelOption.TCP_NODELAY, true)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        if (socketMark != 0) {
                            SocketMark.set(ch, socketMark);
                        }
                        PendingReads.install(ch, 4L << 20);
                    }
                });
        Promise<Channel> dialled = loop.newPromise();
        netns.create(() -> switch (source) {
            case Source.Own own -> b.channel(transport.socketChannel()).connect(target);
            case Source.Local local -> b.channel(transport.socketChannel())
                    .connect(target, new InetSocketAddress(local.address(), 0));
            case Source.Transparent t -> {
                // Set here, where a failure is seen: a Bootstrap option that fails is only logged.
                EpollSocketChannel ch = new EpollSocketChannel();
                try {
                    ch.config().setIpTransparent(true);
                } catch (RuntimeException e) {
                    ch.unsafe().closeForcibly();
                    throw new TransparentBindFailed("IP_TRANSPARENT: " + e.getMessage(), e);
                }
                yield b.channelFactory(() -> ch).connect(target, new InetSocketAddress(t.address(), 0));
            }
        }).whenComplete((ChannelFuture cf, Throwable err) -> {
            if (err != null) {
                dialled.tryFailure(err instanceof java.util.concurrent.CompletionException c && c.getCause() != null
                        ? c.getCause() : err);
                return;
            }
            cf.addListener(f -> {
                if (f.isSuccess()) {
                    netns.track(cf.channel());
                    dialled.trySuccess(cf.channel());
                } else {
                    dialled.tryFailure(f.cause());
                }
            });
        });
        return dialled;
    }

    /** Failures of the transparent socket itself, before a packet left: worth a retry from the pod's address. */
    private static boolean bindFailed(Throwable cause) {
        return cause instanceof TransparentBindFailed
                || (cause instanceof java.io.IOException && String.valueOf(cause.getMessage()).startsWith("bind("));
    }

    /** IP_TRANSPARENT refused on the socket (EPERM without CAP_NET_ADMIN). */
    static final class TransparentBindFailed extends RuntimeException {
        TransparentBindFailed(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
