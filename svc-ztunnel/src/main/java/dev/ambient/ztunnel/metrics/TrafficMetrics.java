package dev.ambient.ztunnel.metrics;

import dev.ambient.hbone.RelayObserver;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Istio's L4 metrics: istio_tcp_connections_opened_total, istio_tcp_connections_closed_total,
 * istio_tcp_received_bytes_total (client to server), istio_tcp_sent_bytes_total (server to client),
 * and istio_tcp_connections_failed_total for connections refused or that could not be set up.
 * Counters are created once per label set and then only incremented on the data plane.
 */
public final class TrafficMetrics {

    private final MeterRegistry registry;
    private final Map<ConnectionLabels, Meters> meters = new ConcurrentHashMap<>();
    private final Map<String, Counter> refusedHandshakes = new ConcurrentHashMap<>();
    private final Map<String, Counter> sourceFallbacks = new ConcurrentHashMap<>();

    private record Meters(Counter opened, Counter closed, Counter received, Counter sent, Map<String, Counter> failed) {
    }

    public TrafficMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    private Meters meters(ConnectionLabels labels) {
        return meters.computeIfAbsent(labels, l -> {
            Tags t = l.tags();
            return new Meters(
                    Counter.builder("istio_tcp_connections_opened").tags(t)
                            .description("TCP connections opened").register(registry),
                    Counter.builder("istio_tcp_connections_closed").tags(t)
                            .description("TCP connections closed").register(registry),
                    Counter.builder("istio_tcp_received_bytes").tags(t).baseUnit("bytes")
                            .description("Bytes received from the client side of TCP connections").register(registry),
                    Counter.builder("istio_tcp_sent_bytes").tags(t).baseUnit("bytes")
                            .description("Bytes sent to the client side of TCP connections").register(registry),
                    new ConcurrentHashMap<>());
        });
    }

    /**
     * Counts an opened connection and returns what counts its bytes and its close.
     *
     * @param clientIsTcpSide true when the relay's TCP side is the client (outbound), false when it
     *        is the server (inbound)
     */
    public Connection opened(ConnectionLabels labels, boolean clientIsTcpSide) {
        Meters m = meters(labels);
        m.opened.increment();
        return new Connection(m, clientIsTcpSide);
    }

    /** A connection that was refused or could not be established; reason goes into response_flags. */
    public void failed(ConnectionLabels labels, String responseFlag) {
        Meters m = meters(labels);
        m.failed.computeIfAbsent(responseFlag, f -> Counter.builder("istio_tcp_connections_failed")
                .tags(labels.tags()).tag("response_flags", f)
                .description("TCP connections that failed or were refused").register(registry)).increment();
    }

    /** An inbound connection handed to the application from the pod's address, not the client's. */
    public void sourceFallback(String reason) {
        sourceFallbacks.computeIfAbsent(reason, r -> Counter.builder("ztunnel_inbound_source_fallbacks")
                .tag("reason", r).description("Inbound connections delivered from the pod's own address because the"
                        + " client's could not be bound").register(registry)).increment();
    }

    /** A TLS/ALPN failure on 15008 before any identity is known. */
    public void handshakeRefused(String reason) {
        refusedHandshakes.computeIfAbsent(reason, r -> Counter.builder("ztunnel_hbone_handshakes_refused")
                .tag("reason", r).description("HBONE connections refused before a request").register(registry))
                .increment();
    }

    /** Byte counting for one relayed connection. */
    public static final class Connection implements RelayObserver {
        private final Meters m;
        private final boolean clientIsTcpSide;

        Connection(Meters m, boolean clientIsTcpSide) {
            this.m = m;
            this.clientIsTcpSide = clientIsTcpSide;
        }

        @Override
        public void intoTunnel(int bytes) {
            (clientIsTcpSide ? m.received : m.sent).increment(bytes);
        }

        @Override
        public void outOfTunnel(int bytes) {
            (clientIsTcpSide ? m.sent : m.received).increment(bytes);
        }

        /** Totals at once, for relays that count only at the end (plain TCP passthrough). */
        public void bytes(long fromClient, long toClient) {
            m.received.increment(fromClient);
            m.sent.increment(toClient);
        }

        public void closed() {
            m.closed.increment();
        }
    }
}
