package dev.ambient.hbone;

import dev.ambient.identity.SpiffeId;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * One accepted HBONE connection and what it may still cost us ({@link HboneLimits}): the deadline
 * for its handshake, its streams in setup, the streams its client reset before we answered them,
 * and its idle time; and its place among the process's connections ({@link HboneAdmission}), which
 * its peer's identity must find room in once the handshake is over. Every limit hit is reported
 * once to the handler. Event loop only.
 */
final class HboneServerConnection {

    /** After an idle GOAWAY, how long a CONNECT already on its way may still arrive before we close. */
    static final Duration IDLE_GRACE = Duration.ofSeconds(1);

    /** After a GOAWAY for misbehaviour, how long the client's further bytes are read and dropped. */
    static final Duration LINGER = Duration.ofSeconds(1);

    private static final String DISCARD = "hbone-discard";

    private enum Stage {
        /** accepted, TLS handshake under way */
        TLS,
        /** h2 negotiated, waiting for the client's preface and SETTINGS */
        PREFACE,
        /** serving streams */
        OPEN,
        /** on its way out: nothing more is reported */
        CLOSING
    }

    private final Channel channel;
    private final HboneLimits limits;
    private final HboneRequestHandler handler;
    private final HboneAdmission admission;
    private final HboneAdmission.Slot slot;
    private final SocketAddress remote;
    private SpiffeId peer;
    private Stage stage = Stage.TLS;
    private ScheduledFuture<?> handshakeDeadline;
    private ScheduledFuture<?> idleCheck;
    private Http2FrameCodec codec;
    private Http2Connection http2;
    private long idleSinceNanos;
    private boolean idleGoAwaySent;
    private int inSetup;
    private boolean setupBoundReported;
    private long rapidResetWindowStart = System.nanoTime();
    /** CONNECTs wasted in the current rapid-reset window. */
    private int wasted;
    private int earlyResets;
    private int refusedInSetup;
    /** A limit was reported: the GOAWAY it causes is not reported a second time. */
    private boolean goAwayReported;

    HboneServerConnection(Channel channel, HboneLimits limits, HboneRequestHandler handler, HboneAdmission admission,
            HboneAdmission.Slot slot) {
        this.channel = channel;
        this.limits = limits;
        this.handler = handler;
        this.admission = admission;
        this.slot = slot;
        this.remote = channel.remoteAddress();
    }

    HboneLimits limits() {
        return limits;
    }

    /** From accept: the whole way to the client's SETTINGS must be done within the handshake timeout. */
    void start() {
        handshakeDeadline = schedule(this::handshakeExpired, limits.handshakeTimeout().toNanos());
        channel.closeFuture().addListener(f -> {
            stage = Stage.CLOSING;
            cancel(handshakeDeadline);
            cancel(idleCheck);
        });
    }

    /** TLS and ALPN succeeded for {@code peer}; {@code codec} now waits for the client's preface. */
    void negotiated(Http2FrameCodec codec, SpiffeId peer) {
        if (stage != Stage.TLS) {
            return;
        }
        stage = Stage.PREFACE;
        this.codec = codec;
        this.peer = peer;
        http2 = codec.connection();
        http2.addListener(new Http2ConnectionAdapter() {
            @Override
            public void onStreamClosed(Http2Stream stream) {
                if (http2.numActiveStreams() == 0) {
                    idleSinceNanos = System.nanoTime();
                }
            }

            @Override
            public void onGoAwaySent(int lastStreamId, long errorCode, ByteBuf debugData) {
                if (errorCode != Http2Error.NO_ERROR.code() && !goAwayReported) {
                    // One of the codec's own guards (or a protocol violation) ends the connection.
                    goAwayReported = true;
                    stage = Stage.CLOSING;
                    Http2Error error = Http2Error.valueOf(errorCode);
                    handler.limitReached(remote, HboneLimit.HTTP2_ERROR, "GOAWAY(" + (error == null ? errorCode : error)
                            + ") sent: " + debugData.toString(StandardCharsets.UTF_8));
                }
            }
        });
    }

    /**
     * The client's first SETTINGS: the handshake is over, and the connection counts for its peer's
     * identity, unless that identity holds its bound already (then GOAWAY(ENHANCE_YOUR_CALM) and
     * closed, taking no stream); from now on it may idle only so long.
     */
    void settingsReceived() {
        if (stage != Stage.PREFACE) {
            return;
        }
        cancel(handshakeDeadline);
        Optional<HboneAdmission.Refused> refused = slot.established(peer);
        if (refused.isPresent()) {
            admission.report(handler, remote, refused.get());
            goAwayAndClose(Http2Error.ENHANCE_YOUR_CALM, refused.get().detail());
            return;
        }
        stage = Stage.OPEN;
        idleSinceNanos = System.nanoTime();
        idleCheck = schedule(this::checkIdle, limits.idleTimeout().toNanos());
    }

    /** TLS or ALPN refused the peer: one line, then closed. */
    void refuse(String reason) {
        if (stage == Stage.CLOSING) {
            return; // closed by us already; the handshake failure that follows is no news
        }
        stage = Stage.CLOSING;
        handler.refused(remote, reason);
        channel.close();
    }

    /**
     * The client shut its sending side (a FIN). Nothing more can come from it, not even the
     * WINDOW_UPDATEs our answers need, so the connection is closed now, whatever stage it is in:
     * with half-closure allowed on accepted sockets, nobody else would, and it would sit in
     * CLOSE-WAIT for ever.
     */
    void inputShutdown() {
        stage = Stage.CLOSING;
        closeNow();
    }

    /** No new stream is taken on: the connection was told to go away for misbehaving. */
    boolean closing() {
        return stage == Stage.CLOSING;
    }

    /**
     * A CONNECT wants a place in setup; false (reported once per connection, charged to the
     * rapid-reset budget) when none is free.
     */
    boolean enterSetup() {
        if (inSetup >= limits.maxStreamsInSetup()) {
            refusedInSetup++;
            chargeRapidReset();
            if (!setupBoundReported && stage != Stage.CLOSING) {
                setupBoundReported = true;
                handler.limitReached(remote, HboneLimit.STREAMS_IN_SETUP, inSetup
                        + " streams in setup (CONNECT received, not yet answered): further CONNECTs refused with"
                        + " REFUSED_STREAM while it lasts (reported once per connection)");
            }
            return false;
        }
        inSetup++;
        return true;
    }

    void leftSetup() {
        inSetup--;
    }

    void setupTimedOut(String detail) {
        handler.limitReached(remote, HboneLimit.SETUP_TIMEOUT, detail);
    }

    /**
     * The client reset a stream we had not answered yet: the authorization and the dial it asked for
     * were spent for nothing.
     */
    void earlyReset() {
        earlyResets++;
        chargeRapidReset();
    }

    /** A wasted CONNECT: past the budget the client is told to calm down (GOAWAY) and the connection closed. */
    private void chargeRapidReset() {
        long now = System.nanoTime();
        if (now - rapidResetWindowStart >= limits.rapidResetWindow().toNanos()) {
            rapidResetWindowStart = now;
            wasted = 0;
        }
        if (++wasted <= limits.rapidResetBudget() || stage == Stage.CLOSING) {
            return;
        }
        String detail = "rapid reset: " + wasted + " CONNECTs wasted within " + HboneLimits.format(limits.rapidResetWindow())
                + " (budget " + limits.rapidResetBudget() + "); on this connection so far " + earlyResets
                + " reset by the client before our answer, " + refusedInSetup + " refused while "
                + limits.maxStreamsInSetup() + " were in setup";
        handler.limitReached(remote, HboneLimit.RAPID_RESET, detail + "; GOAWAY(ENHANCE_YOUR_CALM), closing");
        goAwayAndClose(Http2Error.ENHANCE_YOUR_CALM, detail);
    }

    /** Tells a misbehaving client why it must go (GOAWAY with {@code error} and {@code detail}), then closes. */
    private void goAwayAndClose(Http2Error error, String detail) {
        goAwayReported = true;
        lingeringClose(() -> {
            // Straight to the frame writer: the codec's own GOAWAY with an error closes the socket
            // as soon as it is written, which is what the linger is there to avoid.
            ChannelHandlerContext ctx = channel.pipeline().context(codec);
            codec.encoder().frameWriter().writeGoAway(ctx, http2.remote().lastStreamCreated(), error.code(),
                    ByteBufUtil.writeUtf8(channel.alloc(), detail), ctx.newPromise());
            ctx.flush();
        });
    }

    /**
     * Ends a misbehaving connection so that the client still reads our last words: nothing more it
     * sends is decoded (bytes are dropped before TLS), the frames of the read under way take no new
     * stream, then the GOAWAY goes out, and the socket is closed after {@link #LINGER} or at the
     * client's FIN. Closing at once, with the client's frames still arriving, would make our kernel
     * answer with a TCP reset, and the client's kernel would throw the GOAWAY away unread. (No
     * close_notify before that: streams still finishing write their resets meanwhile, and a write
     * refused by a closed TLS engine would make the codec close the connection at once.) Tunnels
     * still open on the connection end with it.
     */
    private void lingeringClose(Runnable lastWords) {
        stage = Stage.CLOSING;
        channel.pipeline().addFirst(DISCARD, new Discard());
        channel.eventLoop().execute(() -> {
            if (channel.isActive()) {
                lastWords.run();
                schedule(this::closeHard, LINGER.toNanos());
            }
        });
    }

    private void closeHard() {
        ChannelHandlerContext discard = channel.pipeline().context(DISCARD);
        if (discard != null) {
            discard.close();
        } else {
            channel.close();
        }
    }

    /** First in the pipeline while lingering: drops what the client still sends, closes at its FIN. */
    private final class Discard extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                closeHard();
            }
            ReferenceCountUtil.release(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // Closing anyway, on time; a socket error closes the channel by itself.
        }
    }

    private void checkIdle() {
        idleCheck = null;
        if (stage != Stage.OPEN) {
            return;
        }
        long now = System.nanoTime();
        long idleFor = now - idleSinceNanos;
        long timeout = limits.idleTimeout().toNanos();
        if (http2.numActiveStreams() > 0) {
            idleCheck = schedule(this::checkIdle, timeout);
        } else if (idleFor < timeout) {
            idleCheck = schedule(this::checkIdle, timeout - idleFor);
        } else if (!idleGoAwaySent) {
            // As for a drain (RFC 9113 6.8): a CONNECT already on its way is still served.
            idleGoAwaySent = true;
            handler.limitReached(remote, HboneLimit.IDLE_TIMEOUT, "idle: no stream for " + HboneLimits.format(limits.idleTimeout())
                    + "; GOAWAY(NO_ERROR), closing");
            HboneServerInitializer.goAway(channel);
            idleCheck = schedule(this::checkIdle, IDLE_GRACE.toNanos());
        } else {
            stage = Stage.CLOSING;
            channel.close();
        }
    }

    private void handshakeExpired() {
        if (stage != Stage.TLS && stage != Stage.PREFACE) {
            return;
        }
        String detail = stage == Stage.TLS
                ? "TLS handshake not done within " + HboneLimits.format(limits.handshakeTimeout()) + " of accepting the connection"
                : "no HTTP/2 preface and SETTINGS within " + HboneLimits.format(limits.handshakeTimeout()) + " of accepting the connection";
        stage = Stage.CLOSING;
        handler.limitReached(remote, HboneLimit.HANDSHAKE_TIMEOUT, detail + "; closed");
        closeNow();
    }

    /** Closes the socket without waiting for streams (the HTTP/2 codec's close would wait for them). */
    private void closeNow() {
        ChannelHandlerContext codec = channel.pipeline().context(Http2FrameCodec.class);
        if (codec != null) {
            codec.close();
        } else {
            channel.close();
        }
    }

    private ScheduledFuture<?> schedule(Runnable task, long nanos) {
        return channel.eventLoop().schedule(task, nanos, TimeUnit.NANOSECONDS);
    }

    private static void cancel(ScheduledFuture<?> f) {
        if (f != null) {
            f.cancel(false);
        }
    }
}
