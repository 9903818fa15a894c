package dev.ambient.waypoint.http;

import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.LastHttpContent;
import java.util.ArrayDeque;
import java.util.function.Consumer;

/**
 * A copy of a request's body, kept while the request may still be retried, so that another
 * attempt can send it again: the body streams to the endpoint as it arrives, and this holds what
 * has passed. Bounded as Envoy bounds its retry buffer: at most {@code maxBytes} for one request
 * (waypoint.http.retry-buffer-bytes) and what the waypoint's {@link BodyBudget} has left across
 * all requests; a body that outgrows either is given back at once and the request is no longer
 * retried (it streams on). Event loop only.
 */
final class RetryBuffer {

    private final long maxBytes;
    private final BodyBudget budget;
    private final ArrayDeque<HttpContent> held = new ArrayDeque<>();
    private long bytes;
    private boolean released;

    RetryBuffer(long maxBytes, BodyBudget budget) {
        this.maxBytes = maxBytes;
        this.budget = budget;
    }

    /**
     * Keeps a copy of {@code part} (the caller keeps {@code part}); false when it does not fit, in
     * which case everything held was given back and this buffer is spent.
     */
    boolean hold(HttpContent part) {
        if (released) {
            return false;
        }
        int n = part.content().readableBytes();
        if (bytes + n > maxBytes || !budget.tryReserve(n)) {
            release();
            return false;
        }
        bytes += n;
        held.add(part.retainedDuplicate());
        return true;
    }

    /** Whether the whole body so far is here (not spent). */
    boolean usable() {
        return !released;
    }

    /** Whether the body ended, and so the whole body is here. */
    boolean complete() {
        return !released && !held.isEmpty() && held.peekLast() instanceof LastHttpContent;
    }

    /** Hands a fresh view of each held part, in order, to {@code to}, which owns it. */
    void replay(Consumer<HttpContent> to) {
        for (HttpContent part : held) {
            to.accept(part.retainedDuplicate());
        }
    }

    /** Gives everything back; idempotent. */
    void release() {
        if (released) {
            return;
        }
        released = true;
        for (HttpContent part; (part = held.poll()) != null;) {
            part.release();
        }
        budget.release(bytes);
        bytes = 0;
    }

    long bytes() {
        return bytes;
    }
}
