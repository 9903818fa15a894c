package dev.ambient.cni.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.function.Supplier;

/** The agent's Prometheus metrics; names start with {@code ambient_cni_}. */
public final class CniMetrics {

    private final MeterRegistry registry;

    public CniMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    /** Pods enrolled now, and whether the ztunnel is connected (1/0). */
    public void gauges(Supplier<Number> enrolled, Supplier<Number> ztunnelConnected) {
        Gauge.builder("ambient_cni_enrolled_pods", enrolled).description("pods enrolled on this node")
                .register(registry);
        Gauge.builder("ambient_cni_ztunnel_connected", ztunnelConnected)
                .description("1 when a ztunnel is connected over ZDS").register(registry);
    }

    /** An enrolment decision taken: action add|remove, outcome ok|error, trigger cni|watch. */
    public void enrolment(String action, String trigger, boolean ok) {
        Counter.builder("ambient_cni_enrolments_total").tag("action", action).tag("trigger", trigger)
                .tag("outcome", ok ? "ok" : "error").register(registry).increment();
    }

    /** A ZDS request answered (or not): type add|del|snapshot_sent, outcome ok|rejected|lost. */
    public void zdsRequest(String type, String outcome) {
        Counter.builder("ambient_cni_zds_requests_total").tag("type", type).tag("outcome", outcome)
                .register(registry).increment();
    }

    /** A ztunnel told it is replaced by a newer one: outcome ok|rejected|lost (no ack in time). */
    public void zdsHandOver(String outcome) {
        Counter.builder("ambient_cni_zds_handovers_total").tag("outcome", outcome).register(registry).increment();
    }

    /** A ZDS peer closed at accept for who it is (SO_PEERCRED): reason uid|no_credentials. */
    public void zdsRefused(String reason) {
        Counter.builder("ambient_cni_zds_refused_total").tag("reason", reason)
                .description("ZDS connections closed at accept: the process is not an allowed ztunnel")
                .register(registry).increment();
    }

    public void zdsConnection(String outcome) {
        Counter.builder("ambient_cni_zds_connections_total").tag("outcome", outcome).register(registry).increment();
    }

    /** A CNI plugin call served: command ADD|DEL|CHECK, result ok|skip|error. */
    public void pluginCall(String command, String result, Duration took) {
        Timer.builder("ambient_cni_plugin_request_duration_seconds").tag("command", command).tag("result", result)
                .register(registry).record(took);
    }
}
