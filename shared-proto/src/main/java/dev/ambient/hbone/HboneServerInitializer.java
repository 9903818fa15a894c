package dev.ambient.hbone;

import dev.ambient.identity.HboneTls;
import dev.ambient.identity.SpiffeId;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.DefaultHttp2ResetFrame;
import io.netty.handler.codec.http2.DefaultHttp2WindowUpdateFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2SettingsFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ApplicationProtocolNegotiationHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import dev.ambient.net.PendingReads;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.util.function.Supplier;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * The server side of HBONE for one listening socket: TLS 1.3 with a required client certificate,
 * ALPN h2 enforced (OpenSSL would otherwise fall back to HTTP/1.1 for a client offering none),
 * then each HTTP/2 stream is one CONNECT handed to the {@link HboneRequestHandler}. Every peer holds
 * a mesh certificate and may still be hostile: what one connection may cost is bounded by
 * {@link HboneLimits} (see {@link HboneServerConnection}).
 */
public final class HboneServerInitializer extends ChannelInitializer<Channel> {

    /**
     * Netty's own counts of every RST_STREAM received, and of those we send (other than CANCEL),
     * stay on as coarse backstops at this many times the rapid-reset budget per window. They cannot
     * tell a finished tunnel from an abandoned CONNECT, so at Netty's default (200 per 30 s) they
     * cut legitimate peers whose streams end by the thousand; the sharp guard against rapid reset
     * (CVE-2023-44487) is the rapid-reset budget with the bound on streams in setup.
     */
    static final int RESET_BACKSTOP_FACTOR = 100;

    /** The admission an accepted connection got at the {@link #acceptGate()}, until it is initialized. */
    private static final AttributeKey<HboneAdmission.Slot> SLOT = AttributeKey.valueOf("hbone-admission-slot");

    private final Supplier<SslContext> tls;
    private final HboneSettings settings;
    private final HboneLimits limits;
    private final HboneAdmission admission;
    private final HboneRequestHandler handler;
    private final ChannelHandler acceptGate = new AcceptGate();

    /**
     * @param tls the current server context; asked per connection, so renewed certificates apply to new connections
     * @param settings the HTTP/2 tuning, and the {@link HboneSettings#limits} of every connection
     * @param admission the process's count of HBONE connections, shared by all its listeners
     */
    public HboneServerInitializer(Supplier<SslContext> tls, HboneSettings settings, HboneAdmission admission,
            HboneRequestHandler handler) {
        this.tls = tls;
        this.settings = settings;
        this.limits = settings.limits();
        this.admission = admission;
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

    /**
     * For the listening socket's own pipeline ({@code Transport.listen(address, acceptGate(), ...)}):
     * admits each connection the moment it is accepted, on the accepting thread, so that one refused
     * is closed before it is ever registered with an event loop, and a flood of refused connects
     * holds no descriptor beyond the one being looked at. Without it, each connection is admitted
     * when it is initialized, a hop through an event loop's queue later.
     */
    public ChannelHandler acceptGate() {
        return acceptGate;
    }

    @Override
    protected void initChannel(Channel ch) {
        HboneAdmission.Slot admitted = ch.attr(SLOT).getAndSet(null);
        if (admitted == null && (admitted = admit(ch)) == null) {
            ch.close();
            return;
        }
        HboneAdmission.Slot slot = admitted;
        ch.closeFuture().addListener(f -> slot.release());
        SslContext context = tls.get();
        if (context == null) {
            handler.refused(ch.remoteAddress(), "no certificate for this listener yet");
            ch.close();
            return;
        }
        HboneServerConnection connection = new HboneServerConnection(ch, limits, handler, admission, slot);
        FinishingTunnels.reportTo(ch, handler);
        SslHandler ssl = context.newHandler(ch.alloc());
        ssl.setHandshakeTimeoutMillis(0); // the connection's own deadline covers TLS and the HTTP/2 preface
        ch.pipeline().addLast(ssl, new AlpnGate(connection), new ConnectionWatch(connection));
        connection.start();
    }

    /**
     * Before a byte is read: a connection beyond the process's bound, or one more handshake from an
     * address that has its bound of them under way, is refused (reported, rate-limited) and holds
     * nothing; null then.
     */
    private HboneAdmission.Slot admit(Channel ch) {
        return switch (admission.admit(((InetSocketAddress) ch.remoteAddress()).getAddress())) {
            case HboneAdmission.Refused refused -> {
                admission.report(handler, ch.remoteAddress(), refused);
                yield null;
            }
            case HboneAdmission.Admitted a -> a.slot();
        };
    }

    /** See {@link #acceptGate()}: in the listening socket's pipeline, each message is an accepted connection. */
    @ChannelHandler.Sharable
    private final class AcceptGate extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            Channel child = (Channel) msg;
            HboneAdmission.Slot slot = admit(child);
            if (slot == null) {
                child.unsafe().closeForcibly(); // not registered yet: the descriptor is closed right here
                return;
            }
            child.attr(SLOT).set(slot);
            ctx.fireChannelRead(child);
        }
    }

    private final class AlpnGate extends ApplicationProtocolNegotiationHandler {

        private final HboneServerConnection connection;

        AlpnGate(HboneServerConnection connection) {
            super("none");
            this.connection = connection;
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
                    .decoderEnforceMaxRstFramesPerWindow(RESET_BACKSTOP_FACTOR * limits.rapidResetBudget(),
                            backstopWindowSeconds())
                    .encoderEnforceMaxRstFramesPerWindow(RESET_BACKSTOP_FACTOR * limits.rapidResetBudget(),
                            backstopWindowSeconds())
                    .build();
            // Frames up to 1 MiB span several TLS records; composing them avoids copying into a
            // fresh unpooled buffer whenever the cumulation outgrows a pool chunk.
            codec.setCumulator(io.netty.handler.codec.ByteToMessageDecoder.COMPOSITE_CUMULATOR);
            ch.pipeline().addAfter(ctx.name(), "h2-codec", codec);
            ch.pipeline().addAfter("h2-codec", "h2-streams", new Http2MultiplexHandler(
                    new ChannelInitializer<Http2StreamChannel>() {
                        @Override
                        protected void initChannel(Http2StreamChannel stream) {
                            stream.pipeline().addLast(new ConnectStream(peer, connection));
                        }
                    }));
            connection.negotiated(codec, peer);
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
            connection.refuse(reason);
        }
    }

    /**
     * Last in the connection's pipeline: sees the client's first SETTINGS (the connection is up)
     * and a FIN from the client at any stage.
     */
    private static final class ConnectionWatch extends ChannelInboundHandlerAdapter {

        private final HboneServerConnection connection;

        ConnectionWatch(HboneServerConnection connection) {
            this.connection = connection;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof Http2SettingsFrame) {
                connection.settingsReceived();
            }
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                connection.inputShutdown();
            }
            ReferenceCountUtil.release(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // The codec has answered protocol errors already (GOAWAY or RST_STREAM); a socket error ends it all.
            if (!(cause instanceof Http2Exception)) {
                ctx.close();
            }
        }
    }

    /**
     * First in each stream's pipeline: reads the CONNECT headers, validates them, gives the request
     * a place in setup (or refuses the stream) and hands it over; then stays to count a reset that
     * comes before our answer, and passes everything else on.
     */
    private final class ConnectStream extends ChannelInboundHandlerAdapter {

        private final SpiffeId peer;
        private final HboneServerConnection connection;
        private boolean headersRead;
        private HboneRequest request;

        ConnectStream(SpiffeId peer, HboneServerConnection connection) {
            this.peer = peer;
            this.connection = connection;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (request != null) {
                ctx.fireChannelRead(msg);
                return;
            }
            if (headersRead || !(msg instanceof Http2HeadersFrame frame)) {
                // A refused stream's leftovers, or DATA before HEADERS (impossible on a valid stream).
                ReferenceCountUtil.release(msg);
                return;
            }
            headersRead = true;
            Http2StreamChannel stream = (Http2StreamChannel) ctx.channel();
            if (connection.closing()) {
                return; // the rest of a read after our GOAWAY: nothing more is taken on
            }
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
            if (!connection.enterSetup()) {
                // Not queued: the client may retry a refused stream, elsewhere or later.
                stream.writeAndFlush(new DefaultHttp2ResetFrame(Http2Error.REFUSED_STREAM));
                return;
            }
            // Hold early data until the handler accepts.
            stream.config().setAutoRead(false);
            stream.pipeline().addLast(PendingReads.NAME, new PendingReads(settings.streamWindow()));
            request = new HboneRequest(peer, target, headers, stream, connection::leftSetup);
            request.expireAfter(connection.limits().streamSetupTimeout(), connection::setupTimedOut);
            handler.handle(request);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof Http2ResetFrame && request != null && request.inSetup() && !connection.closing()) {
                connection.earlyReset();
            }
            ctx.fireUserEventTriggered(evt);
        }

        private void badRequest(Http2StreamChannel stream, String reason) {
            handler.refused(stream.parent().remoteAddress(), "400 " + reason);
            stream.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("400"), true))
                    .addListener(f -> stream.close());
        }
    }

    private int backstopWindowSeconds() {
        return (int) Math.max(1, limits.rapidResetWindow().toSeconds());
    }

    static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
    }
}
