package dev.ambient.hbone;

import dev.ambient.identity.HboneTls;
import dev.ambient.identity.SpiffeId;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.DefaultHttp2WindowUpdateFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ApplicationProtocolNegotiationHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import dev.ambient.net.PendingReads;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.util.function.Supplier;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * The server side of HBONE for one listening socket: TLS 1.3 with a required client certificate,
 * ALPN h2 enforced (OpenSSL would otherwise fall back to HTTP/1.1 for a client offering none),
 * then each HTTP/2 stream is one CONNECT handed to the {@link HboneRequestHandler}.
 */
public final class HboneServerInitializer extends ChannelInitializer<Channel> {

    private final Supplier<SslContext> tls;
    private final HboneSettings settings;
    private final HboneRequestHandler handler;

    /** @param tls the current server context; asked per connection, so renewed certificates apply to new connections */
    public HboneServerInitializer(Supplier<SslContext> tls, HboneSettings settings, HboneRequestHandler handler) {
        this.tls = tls;
        this.settings = settings;
        this.handler = handler;
    }

    /**
     * Asks the client on an accepted HBONE connection to open no new stream on it; streams already
     * open go on. The last stream id is 2^31-1, as RFC 9113 6.8 advises for a graceful shutdown: a
     * stream the client opened while the GOAWAY was on its way is still served, not refused (with
     * the highest id seen so far, such a stream would be reset). A connection still in its
     * handshake is left alone.
     */
    public static void goAway(Channel ch) {
        ch.eventLoop().execute(() -> {
            if (ch.isActive() && ch.pipeline().get(Http2FrameCodec.class) != null) {
                ch.writeAndFlush(new DefaultHttp2GoAwayFrame(Http2Error.NO_ERROR).setExtraStreamIds(Integer.MAX_VALUE));
            }
        });
    }

    @Override
    protected void initChannel(Channel ch) {
        SslContext context = tls.get();
        if (context == null) {
            handler.refused(ch.remoteAddress(), "no certificate for this listener yet");
            ch.close();
            return;
        }
        ch.pipeline().addLast(context.newHandler(ch.alloc()), new AlpnGate());
    }

    private final class AlpnGate extends ApplicationProtocolNegotiationHandler {

        AlpnGate() {
            super("none");
        }

        @Override
        protected void configurePipeline(ChannelHandlerContext ctx, String protocol) {
            Channel ch = ctx.channel();
            if (!ApplicationProtocolNames.HTTP_2.equals(protocol)) {
                refuse(ch, "ALPN negotiated '" + protocol + "', HBONE needs h2");
                return;
            }
            SpiffeId peer;
            try {
                peer = HboneTls.peerIdentity(ch.pipeline().get(SslHandler.class).engine().getSession());
            } catch (SSLPeerUnverifiedException e) {
                refuse(ch, "peer certificate has no SPIFFE identity: " + e.getMessage());
                return;
            }
            Http2FrameCodec codec = Http2FrameCodecBuilder.forServer()
                    .initialSettings(settings.toHttp2Settings(true))
                    // Peers are authenticated proxies whose streams legitimately end by the thousand.
                    .decoderEnforceMaxRstFramesPerWindow(0, 0)
                    .build();
            // Frames up to 1 MiB span several TLS records; composing them avoids copying into a
            // fresh unpooled buffer whenever the cumulation outgrows a pool chunk.
            codec.setCumulator(io.netty.handler.codec.ByteToMessageDecoder.COMPOSITE_CUMULATOR);
            ch.pipeline().addLast(codec, new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
                @Override
                protected void initChannel(Http2StreamChannel stream) {
                    stream.pipeline().addLast(new ConnectStream(peer));
                }
            }));
            int topUp = settings.connectionWindow() - 65_535;
            if (topUp > 0) {
                ch.writeAndFlush(new DefaultHttp2WindowUpdateFrame(topUp));
            }
        }

        @Override
        protected void handshakeFailure(ChannelHandlerContext ctx, Throwable cause) {
            refuse(ctx.channel(), "TLS handshake failed: " + rootMessage(cause));
        }

        private void refuse(Channel ch, String reason) {
            handler.refused(ch.remoteAddress(), reason);
            ch.close();
        }
    }

    /** Reads the CONNECT headers of one stream, validates them, and hands the request over. */
    private final class ConnectStream extends ChannelInboundHandlerAdapter {

        private final SpiffeId peer;

        ConnectStream(SpiffeId peer) {
            this.peer = peer;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof Http2HeadersFrame frame)) {
                // DATA before HEADERS cannot happen on a valid stream; drop it.
                ReferenceCountUtil.release(msg);
                return;
            }
            Http2StreamChannel stream = (Http2StreamChannel) ctx.channel();
            ctx.pipeline().remove(this);
            var headers = frame.headers();
            if (!HboneHeaders.CONNECT.contentEquals(headers.method() == null ? "" : headers.method())) {
                badRequest(stream, "method " + headers.method() + " is not CONNECT");
                return;
            }
            if (frame.isEndStream()) {
                badRequest(stream, "CONNECT ended its stream in the headers");
                return;
            }
            InetSocketAddress target;
            try {
                target = Authority.parse(headers.authority());
            } catch (IllegalArgumentException e) {
                badRequest(stream, e.getMessage());
                return;
            }
            // Hold early data until the handler accepts.
            stream.config().setAutoRead(false);
            stream.pipeline().addLast(PendingReads.NAME, new PendingReads(settings.streamWindow()));
            handler.handle(new HboneRequest(peer, target, headers, stream));
        }

        private void badRequest(Http2StreamChannel stream, String reason) {
            handler.refused(stream.parent().remoteAddress(), "400 " + reason);
            stream.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("400"), true))
                    .addListener(f -> stream.close());
        }
    }

    static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
    }
}
