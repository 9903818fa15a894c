package dev.ambient.hbone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.ambient.hbone.HboneTestServer.Answer;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http2.Http2StreamChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The pool gives a caller that names its event loop a connection served by that loop, so a relay's
 * two sockets share one thread; callers that name none share whatever connection has room.
 */
class ConnectionPoolTest {

    @TempDir
    java.nio.file.Path dir;
    HboneTestServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void aStreamOpenedForALoopRidesAConnectionOfThatLoop() throws Exception {
        server = new HboneTestServer(dir, HboneSettings.DEFAULTS, HboneAdmission.Limits.DEFAULTS, Answer.DIAL, Duration.ZERO);
        HboneConnector connector = new HboneConnector(server.transport, HboneSettings.DEFAULTS, 5_000, 0);
        PoolKey key = new PoolKey(HboneTestServer.CLIENT_ID, server.address, Set.of(HboneTestServer.SERVER_ID));
        List<EventLoop> loops = new ArrayList<>();
        server.transport.group().forEach(e -> loops.add((EventLoop) e));
        assertEquals(2, loops.size());
        try (ConnectionPool pool = new ConnectionPool(connector, server.transport.group(), Duration.ofMinutes(1))) {
            List<Http2StreamChannel> streams = new ArrayList<>();
            for (int round = 0; round < 3; round++) {
                for (EventLoop loop : loops) {
                    Http2StreamChannel s = open(pool, key, loop);
                    assertSame(loop, s.eventLoop(), "round " + round + ": the stream is served by the caller's loop");
                    streams.add(s);
                }
            }
            // Three streams per loop, on one connection per loop.
            assertEquals(Map.of(key, 2), pool.connectionCounts());
            assertSame(streams.get(0).parent(), streams.get(2).parent());
            assertNotSame(streams.get(0).parent(), streams.get(1).parent());

            // Callers that name no loop (or a loop of another group) share a connection with room.
            Http2StreamChannel any = open(pool, key, null);
            try (var foreign = dev.ambient.net.Transport.create("foreign", 1)) {
                Http2StreamChannel fromForeign = open(pool, key, (EventLoop) foreign.group().next());
                assertSame(any.parent(), fromForeign.parent());
                assertEquals(Map.of(key, 3), pool.connectionCounts());
            }
            streams.forEach(Http2StreamChannel::close);
        }
    }

    private Http2StreamChannel open(ConnectionPool pool, PoolKey key, EventLoop loop) throws Exception {
        return pool.open(key, server.clientTls, HboneHeaders.connect(server.echoAddress, null, null), null, loop)
                .get(30, TimeUnit.SECONDS);
    }
}
