package dev.ambient.ztunnel.inbound;

import dev.ambient.net.PendingReads;
import dev.ambient.net.SocketMark;
import dev.ambient.net.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.SocketChannel;
import java.net.InetSocketAddress;

/**
 * Dials a local workload for an accepted inbound connection. Where the client's address can be
 * bound (loopback in standalone mode) it is kept as the source, so the application sees the real
 * client, as it would without the mesh.
 */
public final class WorkloadDialer {

    private final Transport transport;
    private final boolean preserveSourceIp;
    private final int connectTimeoutMillis;
    private final int socketMark;

    public WorkloadDialer(Transport transport, boolean preserveSourceIp, int connectTimeoutMillis, int socketMark) {
        this.transport = transport;
        this.preserveSourceIp = preserveSourceIp;
        this.connectTimeoutMillis = connectTimeoutMillis;
        this.socketMark = socketMark;
    }

    /** The returned channel holds what the workload sends first until a relay takes it. */
    public ChannelFuture dial(EventLoop loop, InetSocketAddress target, InetSocketAddress client) {
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
        boolean keepSource = preserveSourceIp && client != null && client.getAddress().isLoopbackAddress()
                && target.getAddress().isLoopbackAddress() && !client.getAddress().equals(target.getAddress());
        return keepSource ? b.connect(target, new InetSocketAddress(client.getAddress(), 0)) : b.connect(target);
    }
}
