package dev.ambient.hbone;

import dev.ambient.identity.SpiffeId;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2StreamChannel;
import java.net.InetSocketAddress;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * One CONNECT received over an authenticated HBONE connection. The handler answers it exactly once:
 * {@link #reject} with 400/401/503, or {@link #accept} with a connected upstream, which sends 200
 * and starts relaying. Data the client sent early is held until then.
 */
public final class HboneRequest {

    private final SpiffeId peer;
    private final InetSocketAddress target;
    private final Http2Headers headers;
    private final Http2StreamChannel stream;
    private final InetSocketAddress connectionSource;
    private final InetSocketAddress connectionDestination;
    private boolean answered;

    HboneRequest(SpiffeId peer, InetSocketAddress target, Http2Headers headers, Http2StreamChannel stream) {
        this.peer = peer;
        this.target = target;
        this.headers = headers;
        this.stream = stream;
        this.connectionSource = (InetSocketAddress) stream.parent().remoteAddress();
        this.connectionDestination = (InetSocketAddress) stream.parent().localAddress();
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
        if (answered) {
            throw new IllegalStateException("HBONE request already answered");
        }
        answered = true;
        Http2Headers response = new DefaultHttp2Headers().status(Integer.toString(status));
        stream.writeAndFlush(new DefaultHttp2HeadersFrame(response, true))
                .addListener(f -> stream.close());
    }

    /**
     * Answers 200 and hands the stream itself to the caller, who reads the tunnelled bytes (e.g. to
     * parse HTTP, as a waypoint does). Data the client sent early is still held by a
     * {@link dev.ambient.net.PendingReads}: add the consuming handlers, then
     * {@link dev.ambient.net.PendingReads#release} and turn auto-read on, on the stream's loop.
     */
    public Http2StreamChannel acceptStream() {
        if (answered) {
            throw new IllegalStateException("HBONE request already answered");
        }
        answered = true;
        stream.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200"), false));
        return stream;
    }

    /** Answers 200 and relays between the stream and {@code upstream} until both sides end. */
    public CompletableFuture<TunnelRelay.Result> accept(Channel upstream, RelayObserver observer) {
        if (answered) {
            throw new IllegalStateException("HBONE request already answered");
        }
        answered = true;
        stream.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200"), false));
        return TunnelRelay.start(stream, upstream, observer);
    }
}
