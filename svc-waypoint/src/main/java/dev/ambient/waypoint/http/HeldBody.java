package dev.ambient.waypoint.http;

import dev.ambient.waypoint.extauthz.BodySettings;
import dev.ambient.waypoint.extauthz.CheckBody;
import io.netty.buffer.ByteBuf;

/**
 * One request's body while its CUSTOM check waits for it: the parts themselves stay with the
 * request (they are what is forwarded, unchanged); this keeps a copy of their first
 * {@code maxBytes}, which is what the authorizer is sent, and holds the bytes of both against
 * the waypoint's {@link HeldBodies} budget until {@link #release()}. Event loop only.
 */
final class HeldBody {

    private final BodySettings settings;
    private final BodyBudget budget;
    /** Copies of the parts' first bytes, each as long as what it copied (nothing allocated ahead). */
    private final java.util.ArrayList<byte[]> judged = new java.util.ArrayList<>();
    private int copied;
    private long received;
    private long reserved;
    private boolean released;

    HeldBody(BodySettings settings, BodyBudget budget) {
        this.settings = settings;
        this.budget = budget;
    }

    BodySettings settings() {
        return settings;
    }

    /**
     * A part of the body arrived (the caller keeps it): its bytes are held, the first ones copied.
     * False when the waypoint's budget cannot hold it: nothing is held any more (released).
     */
    boolean add(ByteBuf content) {
        int n = content.readableBytes();
        int copy = Math.min(n, settings.maxBytes() - copied);
        if (released || !budget.tryReserve(n + copy)) {
            release();
            return false;
        }
        reserved += n + copy;
        if (copy > 0) {
            byte[] c = new byte[copy];
            content.getBytes(content.readerIndex(), c);
            judged.add(c);
            copied += copy;
        }
        received += n;
        return true;
    }

    /** Whether the body is longer than the authorizer may be sent (known once more than maxBytes arrived). */
    boolean over() {
        return received > settings.maxBytes();
    }

    /**
     * Whether enough is held to ask: the body ended, or more than maxBytes arrived. (Exactly
     * maxBytes and no end yet: one more part tells whether the body is longer.)
     */
    boolean enough(boolean ended) {
        return ended || over();
    }

    long received() {
        return received;
    }

    /** What the authorizer is sent: the body's first maxBytes (all of it unless over). */
    CheckBody checkBody() {
        byte[] all = new byte[copied];
        int at = 0;
        for (byte[] c : judged) {
            System.arraycopy(c, 0, all, at, c.length);
            at += c.length;
        }
        judged.clear();
        judged.add(all); // held as one, the same bytes, until release
        return new CheckBody(all, over(), received);
    }

    /** Gives the held bytes back to the budget; idempotent. */
    void release() {
        if (!released) {
            released = true;
            budget.release(reserved);
            reserved = 0;
            judged.clear();
        }
    }
}
