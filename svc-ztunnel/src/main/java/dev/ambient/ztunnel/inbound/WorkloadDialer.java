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
import io.netty.channel.socket.SocketChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;

/**
 * Dials a local workload for an accepted inbound connection. Where the client's address can be
 * bound (loopback in standalone mode) it is kept as the source, so the application sees the real
 * client, as it would without the mesh. In-pod, the socket is created inside the pod's network
 * namespace (it reaches the application over the pod's loopback) and marked, so the pod's
 * capture rules let it pass.
 */
public final class WorkloadDialer {

    private final Transport transport;
    private final boolean preserveSourceIp;
    private final int connectTimeoutMillis;
    private final int socketMark;
    private final SocketNamespace netns;

    public WorkloadDialer(Transport transport, boolean preserveSourceIp, int connectTimeoutMillis, int socketMark) {
        this(transport, preserveSourceIp, connectTimeoutMillis, socketMark, SocketNamespace.HOST);
    }

    public WorkloadDialer(Transport transport, boolean preserveSourceIp, int connectTimeoutMillis, int socketMark,
            SocketNamespace netns) {
        this.transport = transport;
        this.preserveSourceIp = preserveSourceIp;
        this.connectTimeoutMillis = connectTimeoutMillis;
        this.socketMark = socketMark;
        this.netns = netns;
    }

    /**
     * Whether a connection to {@code target} can leave from the client's own address: where it can be
     * bound, i.e. loopback addresses in standalone mode (a real pod's address is not ours to bind).
     */
    public static boolean keepsSource(boolean preserveSourceIp, InetSocketAddress client, InetSocketAddress target) {
        return preserveSourceIp && client != null && client.getAddress().isLoopbackAddress()
                && target.getAddress().isLoopbackAddress() && !client.getAddress().equals(target.getAddress());
    }

    /** The connected channel holds what the workload sends first until a relay takes it. Completes on {@code loop}. */
    public Future<Channel> dial(EventLoop loop, InetSocketAddress target, InetSocketAddress client) {
        Bootstrap b = new Bootstrap().group(loop).channel(transport.socketChannel())
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
        boolean keepSource = keepsSource(preserveSourceIp, client, target);
        Promise<Channel> dialled = loop.newPromise();
        netns.create(() -> keepSource ? b.connect(target, new InetSocketAddress(client.getAddress(), 0))
                : b.connect(target)).whenComplete((ChannelFuture cf, Throwable err) -> {
                    if (err != null) {
                        dialled.tryFailure(err);
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
}
