package dev.ambient.waypoint.http;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.handler.codec.http.FullHttpMessage;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpObjectAggregator;

/**
 * Netty's aggregator (one body up to max-body-bytes, 413 beyond, 100-continue), whose bodies also
 * count against the waypoint's {@link BodyBudget}: each chunk is taken from the budget as it is
 * appended, and the whole is given back when the body's memory is freed, however long a retry or
 * a slow client keeps it. A chunk over the budget fails the pipeline with
 * {@link BodyBudget.Exhausted} (the handler answers 503 and closes).
 */
public final class BudgetedAggregator extends HttpObjectAggregator {

    private final BodyBudget budget;

    public BudgetedAggregator(int maxContentLength, BodyBudget budget) {
        super(maxContentLength);
        this.budget = budget;
    }

    @Override
    protected FullHttpMessage beginAggregation(HttpMessage start, ByteBuf content) throws Exception {
        if (content instanceof CompositeByteBuf composite && !composite.isReadable()) {
            // The aggregator's fresh, empty accumulator: replaced by one that gives its budget back.
            ByteBufAllocator alloc = composite.alloc();
            int components = maxCumulationBufferComponents();
            composite.release();
            content = new Counted(alloc, components, budget);
        }
        return super.beginAggregation(start, content);
    }

    @Override
    protected void aggregate(FullHttpMessage aggregated, HttpContent content) throws Exception {
        super.aggregate(aggregated, content);
        if (aggregated.content() instanceof Counted counted) {
            counted.take(content.content().readableBytes());
        }
    }

    /** A body's accumulator that holds its share of the budget until it is freed. */
    private static final class Counted extends CompositeByteBuf {
        private final BodyBudget budget;
        private long taken;

        Counted(ByteBufAllocator alloc, int maxComponents, BodyBudget budget) {
            super(alloc, io.netty.util.internal.PlatformDependent.directBufferPreferred(), maxComponents);
            this.budget = budget;
        }

        void take(long bytes) {
            budget.reserve(bytes);
            taken += bytes;
        }

        @Override
        protected void deallocate() {
            super.deallocate();
            budget.release(taken);
            taken = 0;
        }
    }
}
