package dev.ambient.waypoint.proxy;

import io.netty.channel.Channel;
import io.netty.handler.codec.http.HttpObject;

/**
 * A call to an endpoint outside the mesh whose HTTP version TLS's ALPN decides: until the handshake
 * chose h2 or http/1.1 there is no call to write to (the listener hears {@code ready()} only from
 * the real one), so what the caller may do before, give up or stop reading, is remembered and
 * handed on. On its event loop only.
 */
final class NegotiatedCall implements UpstreamCall {

    private final UpstreamCall.Listener listener;
    private UpstreamCall chosen; // null while the handshake runs
    private boolean gaveUp;
    private boolean readPaused;

    NegotiatedCall(UpstreamCall.Listener listener) {
        this.listener = listener;
    }

    /** The connection failed before a version was chosen. */
    void failed(UpstreamFailure failure) {
        if (!gaveUp) {
            listener.failed(failure);
        }
    }

    /** Whether the caller gave up while the handshake ran (the connection is then not used for it). */
    boolean gaveUp() {
        return gaveUp;
    }

    /** The call on the connection the handshake made, on the version it chose. */
    void chosen(UpstreamCall call) {
        chosen = call;
        if (readPaused) {
            call.readResponse(false);
        }
    }

    @Override
    public void write(HttpObject part) {
        chosen.write(part); // only after ready(), which only the chosen call sends
    }

    @Override
    public void flush() {
        if (chosen != null) {
            chosen.flush();
        }
    }

    @Override
    public boolean isWritable() {
        return chosen != null && chosen.isWritable();
    }

    @Override
    public void readResponse(boolean read) {
        if (chosen != null) {
            chosen.readResponse(read);
        } else {
            readPaused = !read;
        }
    }

    @Override
    public void abort() {
        if (chosen != null) {
            chosen.abort();
        } else {
            gaveUp = true;
        }
    }

    @Override
    public void finished() {
        if (chosen != null) {
            chosen.finished();
        } else {
            gaveUp = true;
        }
    }

    @Override
    public Channel takeOverAsTunnel() {
        return chosen.takeOverAsTunnel();
    }
}
