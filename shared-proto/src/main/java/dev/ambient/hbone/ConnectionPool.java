package dev.ambient.hbone;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * Multiplexes CONNECT streams over few mutual-TLS HTTP/2 connections: one connection per key
 * until the server's stream limit, then another; connections idle past the timeout are closed.
 * Streams waiting for a connection being dialled ride on it rather than each dialling their own.
 *
 * <p>A caller that names its event loop gets a connection served by that loop (one is dialled on
 * it if none has room), as Envoy keeps a pool per worker: the client socket and the connection
 * carrying its stream then share one thread, and no read or write of the relay crosses threads.
 * That costs at most one connection per key per loop.
 */
public final class ConnectionPool implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ConnectionPool.class);

    private final HboneConnector connector;
    private final EventLoopGroup loops;
    private final Duration idleTimeout;
    private final Map<SlotKey, Slot> slots = new ConcurrentHashMap<>();
    private final java.util.concurrent.ScheduledFuture<?> reaper;
    /** Once closed, nothing is dialled and a dial that completes late is closed, not pooled. */
    private volatile boolean closed;

    /** A connection being dialled and the streams already promised to it. */
    private static final class Dialing {
        final Future<HboneClientConnection> connect;
        int promised;

        Dialing(Future<HboneClientConnection> connect) {
            this.connect = connect;
        }
    }

    /** A key's connections on one event loop, or on any (loop null). */
    private record SlotKey(PoolKey key, EventLoop loop) {
    }

    private static final class Slot {
        final List<HboneClientConnection> open = new ArrayList<>();
        final List<Dialing> dialing = new ArrayList<>();
    }

    public ConnectionPool(HboneConnector connector, EventLoopGroup loops, Duration idleTimeout) {
        this.connector = connector;
        this.loops = loops;
        this.idleTimeout = idleTimeout;
        long period = Math.max(1, Math.min(idleTimeout.toMillis() / 2, 5_000));
        this.reaper = loops.next().scheduleAtFixedRate(this::closeIdle, period, period, TimeUnit.MILLISECONDS);
    }

    /**
     * Opens a CONNECT stream to the key's destination, reusing a pooled connection with room.
     *
     * @param tls the source identity's client context (used only if a connection must be dialled)
     * @param customizer socket adjustments for a new connection (bind, mark); may be null
     */
    public Future<Http2StreamChannel> open(PoolKey key, SslContext tls, Http2Headers connect,
            Consumer<Bootstrap> customizer) {
        return open(key, tls, connect, customizer, null);
    }

    /**
     * As {@link #open(PoolKey, SslContext, Http2Headers, Consumer)}, on a connection served by
     * {@code loop} (the caller's socket's loop) if it is one of this pool's loops; null: any.
     */
    public Future<Http2StreamChannel> open(PoolKey key, SslContext tls, Http2Headers connect,
            Consumer<Bootstrap> customizer, EventLoop loop) {
        if (closed) {
            return loops.next().<Http2StreamChannel>newPromise()
                    .setFailure(new IllegalStateException("connection pool closed"));
        }
        // Only a loop of our own group can serve our connections (an epoll channel needs an epoll loop).
        SlotKey slotKey = new SlotKey(key, loop != null && loop.parent() == loops ? loop : null);
        EventLoop dialLoop = slotKey.loop() != null ? slotKey.loop() : loops.next();
        Slot slot;
        Dialing ride = null;
        for (;;) {
            slot = slots.computeIfAbsent(slotKey, k -> new Slot());
            synchronized (slot) {
                if (slots.get(slotKey) != slot) {
                    continue; // reaped between lookup and lock
                }
                slot.open.removeIf(c -> !c.isUsable());
                for (HboneClientConnection c : slot.open) {
                    if (c.hasCapacity()) {
                        return c.open(connect);
                    }
                }
                for (Dialing d : slot.dialing) {
                    if (d.promised < 100) { // the most a server must allow before its SETTINGS are seen
                        d.promised++;
                        ride = d;
                        break;
                    }
                }
                if (ride == null) {
                    ride = new Dialing(connector.connect(key.destination(), tls, key.expectedIdentities(), dialLoop,
                            bindingLocalAddress(key, customizer)));
                    ride.promised = 1;
                    slot.dialing.add(ride);
                    Dialing dialed = ride;
                    Slot owner = slot;
                    ride.connect.addListener(f -> connected(key, owner, dialed));
                }
            }
            break;
        }
        Promise<Http2StreamChannel> result = dialLoop.newPromise();
        ride.connect.addListener(f -> {
            if (!f.isSuccess()) {
                result.tryFailure(f.cause());
                return;
            }
            HboneClientConnection c = (HboneClientConnection) f.getNow();
            c.openReserved(connect).addListener(s -> {
                if (s.isSuccess()) {
                    result.trySuccess((Http2StreamChannel) s.getNow());
                } else {
                    result.tryFailure(s.cause());
                }
            });
        });
        return result;
    }

    /** The key's local address, if any, bound before the customizer's own adjustments. */
    private static Consumer<Bootstrap> bindingLocalAddress(PoolKey key, Consumer<Bootstrap> customizer) {
        if (key.localAddress() == null) {
            return customizer;
        }
        InetSocketAddress local = new InetSocketAddress(key.localAddress(), 0);
        return customizer == null ? b -> b.localAddress(local) : b -> customizer.accept(b.localAddress(local));
    }

    private void connected(PoolKey key, Slot slot, Dialing d) {
        synchronized (slot) {
            slot.dialing.remove(d);
            if (d.connect.isSuccess() && closed) {
                d.connect.getNow().close(); // the pool went (its pod was removed) while this dialled
            } else if (d.connect.isSuccess()) {
                HboneClientConnection c = d.connect.getNow();
                // The streams promised while dialling are counted before the connection is shared.
                c.reserve(d.promised);
                slot.open.add(c);
                LOG.debugf("pool: new HBONE connection %s -> %s (%s)", key.source(), key.destination(), c.peer());
                c.closeFuture().addListener(x -> {
                    synchronized (slot) {
                        slot.open.remove(c);
                    }
                });
            } else if (d.connect.cause() instanceof HboneException e) {
                LOG.debugf("pool: connection to %s failed: %s", key.destination(), e.getMessage());
            }
        }
    }

    /** Connections per key, for the config dump and tests. */
    public Map<PoolKey, Integer> connectionCounts() {
        Map<PoolKey, Integer> out = new java.util.HashMap<>();
        slots.forEach((k, s) -> {
            synchronized (s) {
                if (!s.open.isEmpty()) {
                    out.merge(k.key(), s.open.size(), Integer::sum);
                }
            }
        });
        return out;
    }

    public int totalConnections() {
        return connectionCounts().values().stream().mapToInt(Integer::intValue).sum();
    }

    private void closeIdle() {
        long now = System.nanoTime();
        slots.forEach((k, s) -> {
            List<HboneClientConnection> idle = new ArrayList<>();
            synchronized (s) {
                for (HboneClientConnection c : s.open) {
                    long since = c.idleSinceNanos();
                    if (since >= 0 && now - since > idleTimeout.toNanos()) {
                        idle.add(c);
                    }
                }
                s.open.removeAll(idle);
            }
            idle.forEach(c -> {
                LOG.debugf("pool: closing idle HBONE connection to %s", k.key().destination());
                c.close();
            });
        });
        slots.entrySet().removeIf(e -> {
            synchronized (e.getValue()) {
                return e.getValue().open.isEmpty() && e.getValue().dialing.isEmpty();
            }
        });
    }

    @Override
    public void close() {
        closed = true;
        reaper.cancel(false);
        slots.values().forEach(s -> {
            synchronized (s) {
                s.open.forEach(HboneClientConnection::close);
            }
        });
    }
}
