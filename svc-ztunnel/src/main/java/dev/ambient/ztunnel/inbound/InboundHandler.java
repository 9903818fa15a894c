package dev.ambient.ztunnel.inbound;

import dev.ambient.hbone.Authority;
import dev.ambient.hbone.HboneLimit;
import dev.ambient.hbone.HboneRequest;
import dev.ambient.hbone.HboneRequestHandler;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.metrics.AccessLog;
import dev.ambient.ztunnel.metrics.ConnectionLabels;
import dev.ambient.ztunnel.metrics.TrafficMetrics;
import dev.ambient.ztunnel.state.AuthorizationEvaluator;
import dev.ambient.ztunnel.state.StateSnapshot;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.netty.channel.Channel;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Function;

/**
 * Inbound HBONE for one local workload: the CONNECT must name this workload's own address, the
 * peer's identity must pass L4 authorization, then we dial the workload and relay.
 * 400: not for this workload; 401: denied by policy; 503: the workload does not answer.
 */
public final class InboundHandler implements HboneRequestHandler {

    private final String workloadUid;
    private final Function<StateSnapshot, Optional<Workload>> local;
    private final SpiffeId workloadIdentity;
    private final WorkloadStore store;
    private final AuthorizationEvaluator authorization;
    private final TrafficMetrics metrics;
    private final WorkloadDialer dialer;

    public InboundHandler(String workloadUid, SpiffeId workloadIdentity, WorkloadStore store,
            AuthorizationEvaluator authorization, TrafficMetrics metrics, WorkloadDialer dialer) {
        this(workloadUid, s -> s.workloadByUid(workloadUid), workloadIdentity, store, authorization, metrics, dialer);
    }

    /**
     * @param local finds the workload served, in the current state (in-pod: by the pod's name, or
     *        what the Add request said when the control plane does not know the pod yet)
     */
    public InboundHandler(String workloadUid, Function<StateSnapshot, Optional<Workload>> local,
            SpiffeId workloadIdentity, WorkloadStore store, AuthorizationEvaluator authorization,
            TrafficMetrics metrics, WorkloadDialer dialer) {
        this.workloadUid = workloadUid;
        this.local = local;
        this.workloadIdentity = workloadIdentity;
        this.store = store;
        this.authorization = authorization;
        this.metrics = metrics;
        this.dialer = dialer;
    }

    @Override
    public void handle(HboneRequest request) {
        long start = System.nanoTime();
        StateSnapshot state = store.current();
        SpiffeId peer = request.peer();
        InetSocketAddress target = request.target();
        InetSocketAddress source = request.forwardedFor().orElse(request.connectionSource());
        Optional<Workload> local = this.local.apply(state);
        Workload sourceWorkload = state.workloadByAddress(source.getAddress()).orElse(null);

        if (local.isEmpty() || !hasAddress(local.get(), target.getAddress())) {
            refuse(request, 400, "BR", source, peer, null, sourceWorkload, target,
                    "authority " + Authority.format(target) + " is not workload " + workloadUid + " served here", start);
            return;
        }
        Workload destination = local.get();
        var decision = authorization.evaluate(state, destination, new AuthorizationEvaluator.Request(
                Optional.of(peer.principal()), Optional.of(peer.namespace()), source.getAddress(),
                target.getAddress(), target.getPort()));
        if (!decision.allowed()) {
            refuse(request, 401, "DENY", source, peer, destination, sourceWorkload, target, decision.reason(), start);
            return;
        }
        ConnectionLabels labels = ConnectionLabels.of("destination", sourceWorkload, peer, destination,
                workloadIdentity, null, true);
        dialer.dial(request.eventLoop(), target, source).addListener(f -> {
            if (!f.isSuccess()) {
                refuse(request, 503, "UF", source, peer, destination, sourceWorkload, target,
                        "workload did not accept: " + f.cause().getMessage(), start);
                return;
            }
            if (!request.isOpen()) {
                ((Channel) f.getNow()).close(); // the client went away while we dialled
                request.abandon();
                return;
            }
            TrafficMetrics.Connection counted = metrics.opened(labels, false);
            request.accept((Channel) f.getNow(), counted).whenComplete((r, err) -> {
                counted.closed();
                AccessLog.connection("inbound", source, peer.uri(), target, workloadIdentity.uri(), "hbone",
                        r == null ? 0 : r.outOfTunnel(), r == null ? 0 : r.intoTunnel(), since(start),
                        r != null && r.clean() ? "ok" : "error", r == null ? String.valueOf(err) : r.reason());
            });
        });
    }

    private void refuse(HboneRequest request, int status, String flag, InetSocketAddress source, SpiffeId peer,
            Workload destination, Workload sourceWorkload, InetSocketAddress target, String reason, long start) {
        request.reject(status, reason);
        metrics.failed(ConnectionLabels.of("destination", sourceWorkload, peer, destination, workloadIdentity, null,
                true), flag);
        AccessLog.connection("inbound", source, peer.uri(), target, workloadIdentity.uri(), "hbone", 0, 0,
                since(start), "refused " + status, reason);
    }

    @Override
    public void refused(SocketAddress remote, String reason) {
        metrics.handshakeRefused(reason.startsWith("400") ? "bad_request" : reason.startsWith("TLS") ? "tls" : "other");
        AccessLog.connection("inbound", (InetSocketAddress) remote, "-", null, workloadIdentity.uri(), "hbone", 0, 0,
                Duration.ZERO, "refused", reason);
    }

    @Override
    public void limitReached(SocketAddress remote, HboneLimit limit, String detail) {
        metrics.handshakeRefused(limit.tag());
        AccessLog.connection("inbound", (InetSocketAddress) remote, "-", null, workloadIdentity.uri(), "hbone", 0, 0,
                Duration.ZERO, "limited", limit.tag() + ": " + detail);
    }

    private static boolean hasAddress(Workload w, java.net.InetAddress ip) {
        com.google.protobuf.ByteString raw = com.google.protobuf.ByteString.copyFrom(ip.getAddress());
        return w.getAddressesList().contains(raw);
    }

    private static Duration since(long start) {
        return Duration.ofNanos(System.nanoTime() - start);
    }
}
