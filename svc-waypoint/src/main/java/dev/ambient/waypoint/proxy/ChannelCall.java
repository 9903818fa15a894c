package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.StreamReading;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;

/**
 * What an HTTP/1.1 call and an HTTP/2 call share: a call is connecting until a channel is attached
 * to it, then carries one exchange over that channel; once it is over (aborted, failed, finished or
 * taken over as a tunnel) its listener hears nothing more and what still arrives is dropped.
 * Event loop only.
 */
abstract class ChannelCall implements UpstreamCall {

    final UpstreamCall.Listener listener;
    final EventLoop loop;
    /** Null while connecting. */
    Channel channel;
    /** The listener hears nothing more. */
    boolean over;
    boolean requestEnded;
    boolean responseEnded;

    ChannelCall(UpstreamCall.Listener listener, EventLoop loop) {
        this.listener = listener;
        this.loop = loop;
    }

    /** The channel is ready for this call; a call given up meanwhile leaves it unused. */
    final void attached(Channel ch) {
        channel = ch;
        if (over) {
            release(true); // nothing was written on it
            return;
        }
        listener.ready();
    }

    /** No channel could be had for this call. */
    final void connectFailed(UpstreamFailure failure) {
        if (!over) {
            over = true;
            listener.failed(failure);
        }
    }

    /** A part of the response, from the channel's handler. */
    final void received(HttpObject part) {
        if (over) {
            ReferenceCountUtil.release(part);
            return;
        }
        if (part instanceof LastHttpContent) {
            responseEnded = true;
        }
        listener.response(part);
    }

    final void readComplete() {
        if (!over) {
            listener.readComplete();
        }
    }

    final void writabilityChanged() {
        if (!over) {
            listener.writabilityChanged();
        }
    }

    /** The channel failed the call; the caller closes the channel. */
    final void fail(UpstreamFailure failure) {
        if (!over) {
            over = true;
            listener.failed(failure);
        }
    }

    @Override
    public void write(HttpObject part) {
        if (over || channel == null) {
            ReferenceCountUtil.release(part);
            return;
        }
        if (part instanceof LastHttpContent) {
            requestEnded = true;
        }
        Object encoded;
        try {
            encoded = encode(part);
        } catch (RuntimeException e) {
            ReferenceCountUtil.release(part);
            fail(new UpstreamFailure(UpstreamFailure.Kind.PROTOCOL, "cannot send the request: " + e.getMessage()));
            release(false);
            return;
        }
        // A failed write fires exceptionCaught on the channel, which fails the call.
        channel.write(encoded, channel.voidPromise());
    }

    /** What goes on the channel for a part of the request. */
    Object encode(HttpObject part) {
        return part;
    }

    @Override
    public void flush() {
        if (channel != null && !over) {
            channel.flush();
        }
    }

    @Override
    public boolean isWritable() {
        return channel != null && !over && channel.isWritable();
    }

    @Override
    public void readResponse(boolean read) {
        if (channel != null && !over) {
            StreamReading.set(channel, read);
        }
    }

    @Override
    public void abort() {
        boolean attached = channel != null && !over;
        over = true;
        if (attached) {
            release(false);
        }
    }

    @Override
    public void finished() {
        if (channel != null && !over) {
            over = true;
            release(requestEnded && responseEnded);
        }
        over = true;
    }

    /** Gives the channel back: for reuse when {@code clean}, else reset. */
    abstract void release(boolean clean);
}
