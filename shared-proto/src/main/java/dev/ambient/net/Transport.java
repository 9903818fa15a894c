package dev.ambient.net;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;

/**
 * The data plane's Netty transport: native epoll on Linux (for IP_TRANSPARENT, IP_FREEBIND and
 * friends), NIO elsewhere. The data plane gets its own event loops so that control-plane work,
 * admin pages and metric scrapes, which run on Quarkus's Vert.x loops, never delay traffic.
 */
public record Transport(EventLoopGroup group, Class<? extends SocketChannel> socketChannel,
        Class<? extends ServerChannel> serverChannel, boolean isNative, boolean reusePort) implements AutoCloseable {

    public static Transport create(String name, int threads) {
        DefaultThreadFactory factory = new DefaultThreadFactory(name, true);
        Transport t = Epoll.isAvailable()
                ? new Transport(new EpollEventLoopGroup(threads, factory), EpollSocketChannel.class,
                        EpollServerSocketChannel.class, true, false)
                : new Transport(new NioEventLoopGroup(threads, factory), NioSocketChannel.class,
                        NioServerSocketChannel.class, false, false);
        // Start every loop thread now, from here. Netty starts one lazily from the first thread that
        // hands it work, and a new thread inherits that thread's network namespace: a loop started by
        // a thread inside a pod's namespace (in-pod listeners) would stay there and pin it.
        for (io.netty.util.concurrent.EventExecutor loop : t.group) {
            loop.submit(() -> { }).syncUninterruptibly();
        }
        return t;
    }

    /**
     * The same loops, whose listeners set SO_REUSEPORT: another process (a newer ztunnel, same user)
     * may bind the same address beside them, and the kernel spreads new connections over both.
     */
    public Transport reusingPorts() {
        return new Transport(group, socketChannel, serverChannel, isNative, true);
    }

    /** Sets SO_REUSEPORT on {@code bootstrap}'s socket when this transport reuses ports. */
    public <B extends io.netty.bootstrap.AbstractBootstrap<B, ?>> B reusePortOn(B bootstrap) {
        if (!reusePort) {
            return bootstrap;
        }
        return isNative ? bootstrap.option(io.netty.channel.epoll.EpollChannelOption.SO_REUSEPORT, true)
                : bootstrap.option(io.netty.channel.socket.nio.NioChannelOption.of(
                        java.net.StandardSocketOptions.SO_REUSEPORT), true);
    }

    /**
     * Binds a listening socket whose accepted connections get {@code childHandler}. Accepted sockets
     * have TCP_NODELAY, half-closure on (a FIN is relayed, not a close) and write watermarks of
     * 512 KiB / 1 MiB, the bound on what a relay buffers per direction. Blocks until bound.
     */
    public io.netty.channel.Channel listen(java.net.InetSocketAddress address,
            io.netty.channel.ChannelHandler childHandler) {
        return listen(address, null, childHandler);
    }

    /**
     * As {@link #listen(java.net.InetSocketAddress, io.netty.channel.ChannelHandler)}, with
     * {@code acceptGate} in the listening socket's own pipeline: it sees each accepted connection
     * before it is registered with an event loop, and may close it there.
     */
    public io.netty.channel.Channel listen(java.net.InetSocketAddress address,
            io.netty.channel.ChannelHandler acceptGate, io.netty.channel.ChannelHandler childHandler) {
        var bootstrap = new io.netty.bootstrap.ServerBootstrap();
        if (acceptGate != null) {
            bootstrap.handler(acceptGate);
        }
        return reusePortOn(bootstrap).group(group).channel(serverChannel)
                .option(io.netty.channel.ChannelOption.SO_REUSEADDR, true)
                .childOption(io.netty.channel.ChannelOption.TCP_NODELAY, true)
                .childOption(io.netty.channel.ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childOption(io.netty.channel.ChannelOption.WRITE_BUFFER_WATER_MARK,
                        new io.netty.channel.WriteBufferWaterMark(512 << 10, 1 << 20))
                .childHandler(childHandler)
                .bind(address).syncUninterruptibly().channel();
    }

    @Override
    public void close() {
        group.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
    }
}
