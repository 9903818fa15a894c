package dev.ambient.waypoint.http;

import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http2.Http2StreamChannel;
import java.util.function.Consumer;

/**
 * The client's side of one {@link Exchange}: where the response goes and how fast the request is
 * read. {@link Http1Server} (an HTTP/1.1 connection in a tunnel) and {@link Http2StreamServer} (a
 * stream of an h2c connection) frame the response for their protocol. Event loop only.
 */
interface Downstream {

    /** "HTTP/1.1", "HTTP/1.0" or "HTTP/2", for the access log. */
    String protocol();

    boolean http2();

    /** An interim {@code 100 Continue}. */
    void informational(FullHttpResponse response);

    /** The response head; a {@code FullHttpResponse} is the whole response. */
    void head(HttpResponse head);

    /** A part of the response body, the last one a {@code LastHttpContent}. */
    void content(HttpContent part);

    void flush();

    boolean isWritable();

    /** Backpressure: the exchange wants the request's body now (true) or not (false). */
    void readRequest(boolean read);

    /** The response cannot be completed after its head went out: reset the stream, or end the connection. */
    void abort();

    /** The exchange is over (its response written whole, or aborted); {@code requestEnded} says whether its request was read whole. */
    void ended(boolean requestEnded);

    /**
     * The endpoint switched protocols: once the client has {@code head} (a 101, which an HTTP/2
     * client gets as 200), the client's stream, its HTTP codec gone, carrying bytes from then on
     * ({@code StreamBytes} at its front, what came after the head held in a {@code PendingReads}),
     * goes to {@code switched}.
     */
    void upgrade(HttpResponse head, Consumer<Http2StreamChannel> switched);
}
