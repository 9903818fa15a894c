package dev.ambient.hbone;

import dev.ambient.identity.HboneTls;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.SocketMark;
import dev.ambient.net.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http2.DefaultHttp2WindowUpdateFrame;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ApplicationProtocolNegotiationHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.util.Set;
import java.util.function.Consumer;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * Dials HBONE servers: TCP, TLS 1.3 with our certificate, ALPN h2, then checks that the server
 * proved one of the identities expected for the destination (SPIFFE ids, never DNS names).
 */
public final class HboneConnector {

    private final Transport transport;
    private final HboneSettings settings;
    private final int connectTimeoutMillis;
    private final int socketMark;

    /** @param socketMark SO_MARK for every connection (so capture rules skip them); 0 = none */
    public HboneConnector(Transport transport, HboneSettings settings, int connectTimeoutMillis, int socketMark) {
        this.transport = transport;
        this.settings = settings;
        this.connectTimeoutMillis = connectTimeoutMillis;
        this.socketMark = socketMark;
    }

    /**
     * @param customizer adjusts the socket before it connects (bind address, mark, namespace); may be null
     * @return completes with an open connection, or fails with {@link HboneException}
     */
    public io.netty.util.concurrent.Future<HboneClientConnection> connect(InetSocketAddress server, SslContext tls,
            Set<SpiffeId> expected, EventLoop loop, Consumer<Bootstrap> customizer) {
        Promise<HboneClientConnection> promise = loop.newPromise();
        Bootstrap b = new Bootstrap().group(loop).channel(transport.socketChannel())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, connectTimeoutMillis)
                .option(ChannelOption.TCP_NODELAY, true)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (socketMark != 0) {
                            SocketMark.set(ch, socketMark);
                        }
                        SslHandler ssl = tls.newHandler(ch.alloc(), server.getHostString(), server.getPort());
                        // A server that closes before the handshake ends (e.g. it has no certificate
                        // yet) must fail the connect now, not at the handshake timeout. After the
                        // handshake, the connection reports its own close with the alert's reason.
                        ch.closeFuture().addListener(f -> {
                            if (!ssl.handshakeFuture().isSuccess()) {
                                promise.tryFailure(new HboneException(HboneException.NO_RESPONSE, "server "
                                        + Authority.format(server) + " closed the connection during the TLS handshake"));
                            }
                        });
                        ch.pipeline().addLast(ssl, new AlpnCheck(server, expected, promise));
                    }
                });
        if (customizer != null) {
            customizer.accept(b);
        }
        b.connect(server).addListener(f -> {
            if (!f.isSuccess()) {
                promise.tryFailure(new HboneException(HboneException.NO_RESPONSE,
                        "connect to " + Authority.format(server) + " failed: "
                                + HboneServerInitializer.rootMessage(f.cause()), f.cause()));
            }
        });
        return promise;
    }

    private final class AlpnCheck extends ApplicationProtocolNegotiationHandler {
        private final InetSocketAddress server;
        private final Set<SpiffeId> expected;
        private final Promise<HboneClientConnection> promise;

        AlpnCheck(InetSocketAddress server, Set<SpiffeId> expected, Promise<HboneClientConnection> promise) {
            super("none");
            this.server = server;
            this.expected = expected;
            this.promise = promise;
        }

        @Override
        protected void configurePipeline(ChannelHandlerContext ctx, String protocol) {
            Channel ch = ctx.channel();
            if (!ApplicationProtocolNames.HTTP_2.equals(protocol)) {
                fail(ch, "server " + Authority.format(server) + " negotiated '" + protocol + "', not h2");
                return;
            }
            SpiffeId peer;
            try {
                peer = HboneTls.peerIdentity(ch.pipeline().get(SslHandler.class).engine().getSession());
            } catch (SSLPeerUnverifiedException e) {
                fail(ch, "server " + Authority.format(server) + " has no SPIFFE identity: " + e.getMessage());
                return;
            }
            if (!expected.contains(peer)) {
                fail(ch, "server " + Authority.format(server) + " is " + peer + ", expected one of " + expected);
                return;
            }
            Http2FrameCodec codec = Http2FrameCodecBuilder.forClient()
                    .initialSettings(settings.toHttp2Settings(false))
                    .build();
            // Frames up to 1 MiB span several TLS records; composing them avoids copying into a
            // fresh unpooled buffer whenever the cumulation outgrows a pool chunk.
            codec.setCumulator(io.netty.handler.codec.ByteToMessageDecoder.COMPOSITE_CUMULATOR);
            // In TLS 1.3 the server judges our certificate after our side of the handshake is done;
            // a refusal only shows on the first read. The server's SETTINGS (the first frame it
            // must send) proves it accepted us, so the connection is ready only then.
            HboneClientConnection connection = new HboneClientConnection(ch, peer, settings, promise, server);
            ch.pipeline().addLast(connection.failureRecorder(), codec, connection.settingsWatcher(),
                    new Http2MultiplexHandler(new ChannelInitializer<>() {
                        @Override
                        protected void initChannel(Channel pushed) {
                            pushed.close(); // servers never open streams in HBONE
                        }
                    }));
            int topUp = settings.connectionWindow() - 65_535;
            if (topUp > 0) {
                ch.writeAndFlush(new DefaultHttp2WindowUpdateFrame(topUp));
            }
        }

        @Override
        protected void handshakeFailure(ChannelHandlerContext ctx, Throwable cause) {
            fail(ctx.channel(), "TLS handshake with " + Authority.format(server) + " failed: "
                    + HboneServerInitializer.rootMessage(cause));
        }

        private void fail(Channel ch, String reason) {
            promise.tryFailure(new HboneException(HboneException.NO_RESPONSE, reason));
            ch.close();
        }
    }
}
