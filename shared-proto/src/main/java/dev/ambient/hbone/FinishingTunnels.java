package dev.ambient.hbone;

import io.netty.channel.Channel;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;

/**
 * Tunnels whose client let go of its stream (END_STREAM, then RST_STREAM(NO_ERROR), a clean end by
 * {@link PeerReset}) while we still deliver what it sent. The reset frees the stream's place under
 * the connection's SETTINGS_MAX_CONCURRENT_STREAMS and gives its flow-control window back, so
 * without a bound one client connection could leave any number of them behind, each holding up to
 * a stream window of data (and a socket's buffers) toward an application that does not read. A
 * connection may leave as many as it may have streams open; one more is an abort (one log line per
 * connection, and each one counted by the connection's {@link HboneRequestHandler#limitCounted} as
 * {@link HboneLimit#FINISHING_TUNNELS}). Used by the waypoint's TCP splice and by {@link TunnelRelay}
 * (the ztunnel's inbound).
 */
public final class FinishingTunnels {

    private static final Logger LOG = Logger.getLogger(FinishingTunnels.class);
    private static final AttributeKey<AtomicInteger> FINISHING = AttributeKey.valueOf("hbone-finishing-tunnels");
    private static final AttributeKey<Boolean> REPORTED = AttributeKey.valueOf("hbone-finishing-tunnels-reported");
    private static final AttributeKey<HboneRequestHandler> HANDLER = AttributeKey.valueOf("hbone-finishing-tunnels-handler");

    private FinishingTunnels() {
    }

    /** An accepted HBONE connection's aborts are counted by {@code handler}, the one its CONNECTs go to. */
    static void reportTo(Channel connection, HboneRequestHandler handler) {
        connection.attr(HANDLER).set(handler);
    }

    /**
     * Counts {@code stream}'s tunnel against its connection until {@code done} (both sides closed).
     * False, uncounted, when the connection has as many finishing already as it may have streams
     * open. A stream we opened (as a client) is not a client's and always passes: our pools bound those.
     * Event loop of the stream.
     */
    public static boolean admit(Http2StreamChannel stream, Future<?> done) {
        Channel connection = stream.parent();
        Http2FrameCodec codec = connection.pipeline().get(Http2FrameCodec.class);
        if (codec == null || !codec.connection().isServer()) {
            return true;
        }
        int limit = codec.connection().remote().maxActiveStreams();
        AtomicInteger finishing = connection.attr(FINISHING).get();
        if (finishing == null) {
            finishing = new AtomicInteger();
            connection.attr(FINISHING).set(finishing); // event loop of the connection: no race
        }
        if (finishing.incrementAndGet() > limit) {
            finishing.decrementAndGet();
            if (connection.attr(REPORTED).setIfAbsent(Boolean.TRUE) == null) {
                LOG.warnf("HBONE connection from %s: more than %d tunnels reset after END_STREAM still finishing; "
                        + "the next ones are aborted", connection.remoteAddress(), limit);
            }
            HboneRequestHandler handler = connection.attr(HANDLER).get();
            if (handler != null) {
                // The abort's lines are this warning and the tunnel's own access-log line: only counted here.
                handler.limitCounted(connection.remoteAddress(), HboneLimit.FINISHING_TUNNELS);
            }
            return false;
        }
        AtomicInteger counted = finishing;
        done.addListener(f -> counted.decrementAndGet());
        return true;
    }
}
