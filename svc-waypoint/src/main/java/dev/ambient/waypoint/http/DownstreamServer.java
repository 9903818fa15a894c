package dev.ambient.waypoint.http;

import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.LastHttpContent;

/**
 * What the HTTP/1.1 server ({@link Http1Server}) and the HTTP/2 stream server
 * ({@link Http2StreamServer}) share: writing the response to the client, remembering its last
 * write (after which the connection may close or the stream be reset), and letting the exchange
 * under way hear when a read ends and when the client can take more.
 */
abstract class DownstreamServer extends ChannelInboundHandlerAdapter implements Downstream {

    ChannelHandlerContext ctx;
    /** The exchange under way, or null. */
    Exchange current;
    /** The response's last write so far. */
    ChannelFuture lastWrite;

    /** Writes a response head; a full response (head and body) is flushed at once. */
    final void writeHead(HttpResponse response) {
        if (response instanceof FullHttpResponse) {
            lastWrite = ctx.writeAndFlush(response);
        } else {
            lastWrite = ctx.write(response);
        }
    }

    @Override
    public final void content(HttpContent part) {
        if (part instanceof LastHttpContent) {
            lastWrite = ctx.writeAndFlush(part);
        } else {
            lastWrite = ctx.write(part);
        }
    }

    @Override
    public final void flush() {
        ctx.flush();
    }

    @Override
    public final boolean isWritable() {
        return ctx.channel().isWritable();
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        if (current != null) {
            current.requestReadComplete();
        }
        ctx.fireChannelReadComplete();
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (current != null) {
            current.downstreamWritabilityChanged();
        }
        ctx.fireChannelWritabilityChanged();
    }

    /** The client is gone (or reset its stream): the exchange under way, if any, is abandoned. */
    final void abandonCurrent() {
        Exchange e = current;
        current = null;
        if (e != null) {
            e.abandon();
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
    }
}
