package dev.ambient.hbone;

/**
 * HTTP/2 tuning for HBONE. Windows are MiBs, not HTTP/2's 64 KiB default, so that one stream can
 * fill a node-to-node link; frames up to 1 MiB halve the per-frame cost of bulk transfers.
 *
 * @param streamWindow initial flow-control window of each CONNECT stream, bytes
 * @param connectionWindow flow-control window of the whole connection, bytes
 * @param maxFrameSize largest DATA frame we accept, bytes
 * @param maxConcurrentStreams streams the server allows on one connection (the pool opens another
 *        connection beyond it)
 * @param limits what one peer connection may cost a server (a client ignores them)
 */
public record HboneSettings(int streamWindow, int connectionWindow, int maxFrameSize, int maxConcurrentStreams,
        HboneLimits limits) {

    public static final HboneSettings DEFAULTS = new HboneSettings(4 << 20, 16 << 20, 1 << 20, 100);

    public HboneSettings {
        if (streamWindow < 65_535 || connectionWindow < 65_535) {
            throw new IllegalArgumentException("HBONE windows must be at least 65535 bytes");
        }
        if (maxFrameSize < 16_384 || maxFrameSize > 16_777_215) {
            throw new IllegalArgumentException("HTTP/2 max frame size must be within 16384..16777215");
        }
        if (maxConcurrentStreams < 1) {
            throw new IllegalArgumentException("max concurrent streams must be positive");
        }
        if (limits == null) {
            throw new IllegalArgumentException("HBONE limits are required");
        }
    }

    /** With the default {@link HboneLimits}. */
    public HboneSettings(int streamWindow, int connectionWindow, int maxFrameSize, int maxConcurrentStreams) {
        this(streamWindow, connectionWindow, maxFrameSize, maxConcurrentStreams, HboneLimits.DEFAULTS);
    }

    public HboneSettings withLimits(HboneLimits limits) {
        return new HboneSettings(streamWindow, connectionWindow, maxFrameSize, maxConcurrentStreams, limits);
    }

    io.netty.handler.codec.http2.Http2Settings toHttp2Settings(boolean server) {
        var s = new io.netty.handler.codec.http2.Http2Settings()
                .initialWindowSize(streamWindow)
                .maxFrameSize(maxFrameSize);
        if (server) {
            s.maxConcurrentStreams(maxConcurrentStreams).maxHeaderListSize(limits.maxHeaderListSize());
        } else {
            // The server never opens streams towards the client.
            s.maxConcurrentStreams(0).pushEnabled(false);
        }
        return s;
    }
}
