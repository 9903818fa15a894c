package dev.ambient.waypoint.proxy;

import io.netty.handler.codec.http.HttpObject;
import io.netty.channel.Channel;

/**
 * One request/response exchange with an endpoint, streaming both ways: the caller writes the
 * request head and then its body as it arrives; the response comes to the {@link Listener} as it
 * is read, head first. Both sides push back: write only while {@link #isWritable()}, and
 * {@link #readResponse(boolean) stop reading} while the client cannot take more. All calls and
 * all events happen on the event loop the call was opened on.
 */
public interface UpstreamCall {

    /** What happens to a call, on its event loop; a listener hears nothing after {@link #failed} or the response's end. */
    interface Listener {
        /** Connected: the request head may be written now. */
        void ready();

        /**
         * Part of the response: an {@code HttpResponse} head first (a {@code FullHttpResponse} is the
         * whole response), then {@code HttpContent}s, the last one a {@code LastHttpContent} (with the
         * trailers). The listener owns (releases) what it gets.
         */
        void response(HttpObject part);

        /** The end of one read from the endpoint: a good moment to flush what was written to the client. */
        void readComplete();

        /** The call's writability changed: the request's body may resume, or must pause. */
        void writabilityChanged();

        /** No (more) response: the kind says why. */
        void failed(UpstreamFailure failure);
    }

    /** Writes the request head, then its body, ending with a {@code LastHttpContent}; ownership passes. */
    void write(HttpObject part);

    void flush();

    boolean isWritable();

    /** Backpressure from the client's side: stop (false) or resume (true) reading the response. */
    void readResponse(boolean read);

    /** Gives up on the call: the connection (HTTP/1.1) or stream (HTTP/2) is reset and never reused. */
    void abort();

    /** The exchange is over: a call whose request and response both ended may be reused, any other is reset. */
    void finished();

    /**
     * After a {@code 101 Switching Protocols} head: the call's stream, its HTTP codec removed,
     * carrying bytes from now on ({@link StreamBytes} at its front, what was read after the head
     * held in a {@code PendingReads} that the splice releases). The call is over.
     */
    Channel takeOverAsTunnel();
}
