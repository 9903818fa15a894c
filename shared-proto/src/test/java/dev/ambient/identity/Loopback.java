package dev.ambient.identity;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.Future;
import java.net.InetSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Real TLS over loopback: a Netty echo server and a client on 127.0.0.1, an ephemeral port per
 * server context. After its handshake the client sends "ping" and waits for the echo, because in
 * TLS 1.3 a server rejects a client certificate only after the client has finished its side of
 * the handshake; the rejection then shows up as a failed read on the client.
 */
final class Loopback implements AutoCloseable {

    static final String HOST = "127.0.0.1";

    private final EventLoopGroup group = new NioEventLoopGroup(2);
    private final Map<SslContext, Integer> listeners = new IdentityHashMap<>();
    private final List<Channel> open = new ArrayList<>();
    private final AtomicReference<CompletableFuture<SslHandler>> nextServerHandshake = new AtomicReference<>();
    /** By server handshake: whether it resumed, as said before it completed (so, before connect returns). */
    private final Map<CompletableFuture<SslHandler>, Boolean> serverResumed =
            java.util.Collections.synchronizedMap(new IdentityHashMap<>());

    /**
     * What each side saw; every future is settled by the time {@link #connect} returns. Whether a
     * side resumed a session is what its BoringSSL engine said as its handshake completed (null for
     * a JDK engine, which cannot say): read any later, a closed connection's engine says false.
     */
    record Outcome(CompletableFuture<SslHandler> server, CompletableFuture<SslHandler> client,
            CompletableFuture<String> echo, Boolean serverResumed, Boolean clientResumed) {

        boolean succeeded() {
            return !server.isCompletedExceptionally() && !client.isCompletedExceptionally()
                    && "ping".equals(echo.getNow(null));
        }

        Throwable serverFailure() {
            return failure(server);
        }

        Throwable clientFailure() {
            Throwable handshake = failure(client);
            return handshake != null ? handshake : failure(echo);
        }

        private static Throwable failure(CompletableFuture<?> future) {
            try {
                future.join();
                return null;
            } catch (CompletionException e) {
                return e.getCause();
            }
        }

        @Override
        public String toString() {
            return "server: " + describe(server) + ", client: " + describe(client) + ", echo: " + describe(echo);
        }

        private static String describe(CompletableFuture<?> future) {
            Throwable t = failure(future);
            return t == null ? "ok" : causes(t);
        }
    }

    /** The messages of a throwable and its causes, to match on. */
    static String causes(Throwable t) {
        StringBuilder text = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            text.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage()).append(" <- ");
        }
        return text.toString();
    }

    /**
     * Connects a client to the listener of {@code serverContext} (bound on first use, then kept,
     * so that repeated connections reach the same address and may resume their session).
     * Connections are made one at a time.
     */
    Outcome connect(SslContext serverContext, SslContext clientContext) throws Exception {
        CompletableFuture<SslHandler> server = new CompletableFuture<>();
        CompletableFuture<SslHandler> client = new CompletableFuture<>();
        CompletableFuture<String> echo = new CompletableFuture<>();
        AtomicReference<Boolean> clientResumed = new AtomicReference<>();
        nextServerHandshake.set(server);
        int port = listeners.computeIfAbsent(serverContext, this::listen);
        Channel channel = null;
        try {
            channel = new Bootstrap()
                    .group(group)
                    .channel(NioSocketChannel.class)
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            SslHandler ssl = clientContext.newHandler(ch.alloc(), HOST, port);
                            ssl.handshakeFuture().addListener(f -> {
                                clientResumed.set(sessionReused(ssl));
                                settle(client, ssl, f);
                                if (f.isSuccess()) {
                                    ch.writeAndFlush(Unpooled.copiedBuffer("ping", StandardCharsets.US_ASCII));
                                }
                            });
                            ch.pipeline().addLast(ssl, new ChannelInboundHandlerAdapter() {
                                private final StringBuilder received = new StringBuilder();

                                @Override
                                public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                    ByteBuf buf = (ByteBuf) msg;
                                    received.append(buf.toString(StandardCharsets.US_ASCII));
                                    buf.release();
                                    if (received.length() >= 4) {
                                        echo.complete(received.toString());
                                    }
                                }

                                @Override
                                public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                    echo.completeExceptionally(cause);
                                    ctx.close();
                                }

                                @Override
                                public void channelInactive(ChannelHandlerContext ctx) {
                                    echo.completeExceptionally(new ClosedChannelException());
                                }
                            });
                        }
                    })
                    .connect(HOST, port).sync().channel();
            for (CompletableFuture<?> f : new CompletableFuture<?>[] {server, client, echo}) {
                f.handle((v, e) -> null).get(15, TimeUnit.SECONDS);
            }
            return new Outcome(server, client, echo, serverResumed.remove(server), clientResumed.get());
        } finally {
            if (channel != null) {
                channel.close().sync();
            }
        }
    }

    private int listen(SslContext serverContext) {
        Channel listener = new ServerBootstrap()
                .group(group)
                .channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        CompletableFuture<SslHandler> server = nextServerHandshake.getAndSet(null);
                        SslHandler ssl = serverContext.newHandler(ch.alloc());
                        ssl.handshakeFuture().addListener(f -> {
                            serverResumed.put(server, sessionReused(ssl));
                            settle(server, ssl, f);
                        });
                        ch.pipeline().addLast(ssl, new ChannelInboundHandlerAdapter() {
                            @Override
                            public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                ctx.writeAndFlush(msg);
                            }

                            @Override
                            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                ctx.close();
                            }
                        });
                    }
                })
                .bind(HOST, 0).syncUninterruptibly().channel();
        open.add(listener);
        return ((InetSocketAddress) listener.localAddress()).getPort();
    }

    /** Netty keeps BoringSSL's "session reused" flag package-private; the JDK engine has none (null). */
    static Boolean sessionReused(SslHandler handler) {
        for (Class<?> c = handler.engine().getClass(); c != null; c = c.getSuperclass()) {
            try {
                var method = c.getDeclaredMethod("isSessionReused");
                method.setAccessible(true);
                return (Boolean) method.invoke(handler.engine());
            } catch (NoSuchMethodException e) {
                // look further up
            } catch (ReflectiveOperationException | RuntimeException e) {
                return null;
            }
        }
        return null;
    }

    private static void settle(CompletableFuture<SslHandler> side, SslHandler ssl, Future<?> handshake) {
        if (handshake.isSuccess()) {
            side.complete(ssl);
        } else {
            side.completeExceptionally(handshake.cause());
        }
    }

    @Override
    public void close() {
        open.forEach(Channel::close);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
