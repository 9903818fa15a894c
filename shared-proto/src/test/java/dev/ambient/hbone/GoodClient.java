package dev.ambient.hbone;

import dev.ambient.net.PendingReads;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.util.ReferenceCountUtil;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.util.Arrays;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A well-behaved HBONE client (our own client code): tunnels to the echo server over one pooled
 * connection, as a peer ztunnel would, and checks every byte comes back.
 */
final class GoodClient implements AutoCloseable {

    private final HboneTestServer server;
    private final HboneClientConnection connection;

    GoodClient(HboneTestServer server) throws Exception {
        this(server, server.clientTls, null);
    }

    /**
     * @param tls the client's identity
     * @param from the local address to connect from (another 127.0.x.y than an attacker's); null: any
     */
    GoodClient(HboneTestServer server, SslContext tls, InetAddress from) throws Exception {
        this.server = server;
        HboneConnector connector = new HboneConnector(server.transport, HboneSettings.DEFAULTS, 5_000, 0);
        this.connection = connector.connect(server.address, tls, Set.of(HboneTestServer.SERVER_ID),
                server.transport.group().next(), from == null ? null : b -> b.localAddress(from, 0))
                .get(10, TimeUnit.SECONDS);
        server.handler.good.add(connection.channel().localAddress());
    }

    /** One tunnel: CONNECT, 200, {@code size} bytes there and back, both sides ended. */
    boolean tunnel(int size) {
        try {
            byte[] payload = new byte[size];
            new Random(size).nextBytes(payload);
            Http2StreamChannel stream = connection.open(HboneHeaders.connect(server.echoAddress, null, null))
                    .get(10, TimeUnit.SECONDS);
            CompletableFuture<byte[]> echoed = new CompletableFuture<>();
            stream.eventLoop().submit(() -> {
                stream.pipeline().addLast(new Collector(echoed));
                PendingReads.release(stream);
                stream.config().setAutoRead(true);
                stream.writeAndFlush(new DefaultHttp2DataFrame(Unpooled.wrappedBuffer(payload), true));
            }).get(10, TimeUnit.SECONDS);
            return Arrays.equals(payload, echoed.get(10, TimeUnit.SECONDS));
        } catch (Exception e) {
            return false;
        }
    }

    /** A tunnel the client gives up right after the 200: RST_STREAM(CANCEL) on an answered stream. */
    boolean abortedTunnel() {
        try {
            Http2StreamChannel stream = connection.open(HboneHeaders.connect(server.echoAddress, null, null))
                    .get(10, TimeUnit.SECONDS);
            stream.close().get(10, TimeUnit.SECONDS);
            return true;
        } catch (Exception e) {
            return false;
        }
    }

    boolean isUsable() {
        return connection.isUsable();
    }

    @Override
    public void close() {
        connection.close();
    }

    /** Good tunnels in a loop on one connection while an attack runs; what flowed is printed. */
    static final class Traffic implements AutoCloseable {
        final AtomicInteger ok = new AtomicInteger();
        final AtomicInteger failed = new AtomicInteger();
        final AtomicLong slowestNanos = new AtomicLong();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final Thread thread;
        private final GoodClient client;

        Traffic(HboneTestServer server) throws Exception {
            this(new GoodClient(server));
        }

        /** On {@code client}'s connection (another identity, another source address). */
        Traffic(GoodClient client) {
            this.client = client;
            thread = Thread.ofVirtual().start(() -> {
                while (running.get()) {
                    long start = System.nanoTime();
                    if (client.tunnel(4096)) {
                        ok.incrementAndGet();
                    } else {
                        failed.incrementAndGet();
                    }
                    slowestNanos.accumulateAndGet(System.nanoTime() - start, Math::max);
                }
            });
        }

        @Override
        public void close() throws InterruptedException {
            running.set(false);
            thread.join(15_000);
            client.close();
        }

        @Override
        public String toString() {
            return ok + " good tunnels echoed on one pooled connection, " + failed + " failed, slowest "
                    + TimeUnit.NANOSECONDS.toMillis(slowestNanos.get()) + " ms";
        }
    }

    private static final class Collector extends ChannelInboundHandlerAdapter {
        private final CompletableFuture<byte[]> done;
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

        Collector(CompletableFuture<byte[]> done) {
            this.done = done;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            try {
                if (msg instanceof Http2DataFrame data) {
                    bytes.writeBytes(ByteBufUtil.getBytes(data.content()));
                    if (data.isEndStream()) {
                        done.complete(bytes.toByteArray());
                    }
                }
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof Http2ResetFrame reset) {
                done.completeExceptionally(new IllegalStateException("reset " + reset.errorCode()));
            }
            ReferenceCountUtil.release(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            done.completeExceptionally(new IllegalStateException("stream closed before END_STREAM"));
        }
    }
}
