package dev.ambient.waypoint.callout;

import io.vertx.core.AsyncResult;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.streams.WriteStream;
import java.nio.charset.StandardCharsets;

/**
 * The body of a response to a call the waypoint makes itself (a JWKS fetch, an ext_authz check),
 * as a vertx-web-client body sink: held up to a bound; past it the rest is dropped and the call
 * is to fail, so a hostile or broken server cannot make the waypoint buffer without end.
 */
public final class CappedBody implements WriteStream<Buffer> {
    private final int max;
    private final Buffer held = Buffer.buffer();
    private volatile boolean overflowed;

    public CappedBody(int max) {
        this.max = max;
    }

    /** True once the body outgrew the bound; what was held is then incomplete. */
    public boolean overflowed() {
        return overflowed;
    }

    public String text() {
        return held.toString(StandardCharsets.UTF_8);
    }

    @Override
    public Future<Void> write(Buffer data) {
        if (!overflowed && held.length() + data.length() <= max) {
            held.appendBuffer(data);
        } else {
            overflowed = true; // dropped from here on
        }
        return Future.succeededFuture();
    }

    @Override
    public void write(Buffer data, Handler<AsyncResult<Void>> handler) {
        write(data).onComplete(handler);
    }

    @Override
    public void end(Handler<AsyncResult<Void>> handler) {
        if (handler != null) {
            handler.handle(Future.succeededFuture());
        }
    }

    @Override
    public WriteStream<Buffer> exceptionHandler(Handler<Throwable> handler) {
        return this;
    }

    @Override
    public WriteStream<Buffer> setWriteQueueMaxSize(int maxSize) {
        return this;
    }

    @Override
    public boolean writeQueueFull() {
        return false;
    }

    @Override
    public WriteStream<Buffer> drainHandler(Handler<Void> handler) {
        return this;
    }
}
