package dev.ambient.hbone;

import dev.ambient.identity.SpiffeId;
import dev.ambient.net.SocketRelay;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2StreamChannel;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * One CONNECT received over an authenticated HBONE connection. The handler answers it exactly once:
 * {@link #reject} with 400/401/503, or {@link #accept} with a connected upstream, which sends 200
 * and starts relaying; or it {@link #abandon}s it when the client went away meanwhile. Data the
 * client sent early is held until then. Until that moment the request is in setup and holds one of
 * its connection's places for streams in setup; past the setup timeout the server answers 503 in
 * the handler's stead, and the handler's late answer does nothing (a late upstream is closed).
 */
public final class HboneRequest {

    /** Where a request is: in setup, or out of it and how. */
    private enum Phase {
        SETTING_UP, ANSWERED, ABANDONED, EXPIRED
    }

    private final SpiffeId peer;
    private final InetSocketAddress target;
    private final Http2Headers headers;
    private final Http2StreamChannel stream;
    private final InetSocketAddress connectionSource;
    private final InetSocketAddress connectionDestination;
    private final AtomicReference<Phase> phase = new AtomicReference<>(Phase.SETTING_UP);
    private final Runnable leftSetup;
    private volatile ScheduledFuture<?> deadline;

    /** @param leftSetup run once on the stream's event loop when the request leaves setup */
    HboneRequest(SpiffeId peer, InetSocketAddress target, Http2Headers headers, Http2StreamChannel stream,
            Runnable leftSetup) {
        this.peer = peer;
        this.target = target;
        this.headers = headers;
        this.stream = stream;
        this.leftSetup = leftSetup;
        this.connectionSource = (InetSocketAddress) stream.parent().remoteAddress();
        this.connectionDestination = (InetSocketAddress) stream.parent().localAddress();
    }

    /** On the stream's loop, before the handler sees the request: answers 503 if still in setup after {@code timeout}. */
    void expireAfter(Duration timeout, Consumer<String> report) {
        deadline = stream.eventLoop().schedule(() -> {
            if (leave(Phase.EXPIRED)) {
                report.accept("CONNECT to " + Authority.format(target) + " not answered within " + HboneLimits.format(timeout)
                        + ": answered 503");
                respond(503);
            }
        }, timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Still waiting for the handler's answer. */
    boolean inSetup() {
        return phase.get() == Phase.SETTING_UP;
    }

    private boolean leave(Phase to) {
        if (!phase.compareAndSet(Phase.SETTING_UP, to)) {
            return false;
        }
        ScheduledFuture<?> d = deadline;
        if (d != null) {
            d.cancel(false);
        }
        SocketRelay.onLoop(stream, leftSetup);
        return true;
    }

    /** True if this call answers; false if the server already answered for the handler (or it abandoned). */
    private boolean answer() {
        if (leave(Phase.ANSWERED)) {
            return true;
        }
        if (phase.get() == Phase.ANSWERED) {
            throw new IllegalStateException("HBONE request already answered");
        }
        return false;
    }

    private void respond(int status) {
        Http2Headers response = new DefaultHttp2Headers().status(Integer.toString(status));
        stream.writeAndFlush(new DefaultHttp2HeadersFrame(response, true)).addListener(f -> stream.close());
    }

    /** The authenticated identity of the peer (source workload, or a waypoint). */
    public SpiffeId peer() {
        return peer;
    }

    /** The destination asked for in {@code :authority}. */
    public InetSocketAddress target() {
        return target;
    }

    public Http2Headers headers() {
        return headers;
    }

    /** Where the HBONE connection came from (the peer's ztunnel or waypoint socket). */
    public InetSocketAddress connectionSource() {
        return connectionSource;
    }

    /** The local address the HBONE connection arrived on (in-pod: the pod's IP). */
    public InetSocketAddress connectionDestination() {
        return connectionDestination;
    }

    /**
     * The original client address from {@code Forwarded: for="ip:port"}, when present and well formed.
     * It is the peer's claim: believe it only when the peer is the destination's own waypoint
     * (checked by its SPIFFE identity); from anyone else use {@link #connectionSource()}.
     */
    public Optional<InetSocketAddress> forwardedFor() {
        return HboneHeaders.forwardedFor(headers);
    }

    /** The event loop of this stream: dial upstreams on it to avoid cross-thread hand-offs. */
    public EventLoop eventLoop() {
        return stream.eventLoop();
    }

    public boolean isOpen() {
        return stream.isActive();
    }

    /** Answers with an error status and ends the stream. */
    public void reject(int status, String reason) {
        if (answer()) {
            respond(status);
        }
    }

    /**
     * Gives the request up without an answer, because its stream closed while the handler worked
     * (the client reset it): frees its place among the streams in setup. A stream still open is
     * reset. Nothing happens if it was already answered.
     */
    public void abandon() {
        if (leave(Phase.ABANDONED) && stream.isActive()) {
            stream.close();
        }
    }

    /**
     * Answers 200 and hands the stream itself to the caller, who reads the tunnelled bytes (e.g. to
     * parse HTTP, as a waypoint does). Data the client sent early is still held by a
     * {@link dev.ambient.net.PendingReads}: add the consuming handlers, then
     * {@link dev.ambient.net.PendingReads#release} and turn auto-read on, on the stream's loop.
     */
    public Http2StreamChannel acceptStream() {
        if (!answer()) {
            return stream; // answered 503 by the server already, and closed
        }
        stream.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200"), false));
        return stream;
    }

    /** Answers 200 and relays between the stream and {@code upstream} until both sides end. */
    public CompletableFuture<TunnelRelay.Result> accept(Channel upstream, RelayObserver observer) {
        if (!answer()) {
            upstream.close();
            return CompletableFuture.completedFuture(new TunnelRelay.Result(0, 0, false,
                    "CONNECT " + phase.get().name().toLowerCase(Locale.ROOT) + " before the tunnel was up"));
        }
        stream.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200"), false));
        return TunnelRelay.start(stream, upstream, observer);
    }
}
