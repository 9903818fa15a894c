package dev.ambient.ztunnel.inbound;

import dev.ambient.hbone.Authority;
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
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Optional;

/**
 * Inbound HBONE for one local workload: the CONNECT must name this workload's own address, the
 * peer's identity must pass L4 authorization, then we dial the workload and relay.
 * 400: not for this workload; 401: denied by policy; 503: the workload does not answer.
 */
public final class InboundHandler implements HboneRequestHandler {

    private final String workloadUid;
    private final SpiffeId workloadIdentity;
    private final WorkloadStore store;
    private final AuthorizationEvaluator authorization;
    private final TrafficMetrics metrics;
    private final WorkloadDialer dialer;

    public InboundHandler(String workloadUid, SpiffeId workloadIdentity, WorkloadStore store,
            AuthorizationEvaluator authorization, TrafficMetrics metrics, WorkloadDialer dialer) {
        this.workloadUid = workloadUid;
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
        Optional<Workload> local = state.workloadByUid(workloadUid);
        Workload sourceWorkload = state.workloadByAddress(source.getAddress()).orElse(null);

        if (local.isEmpty() || !state.workloadByAddress(target.getAddress())
                .map(w -> w.getUid().equals(workloadUid)).orElse(false)) {
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
        ChannelFuture dial = dialer.dial(request.eventLoop(), target, source);
        dial.addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                refuse(request, 503, "UF", source, peer, destination, sourceWorkload, target,
                        "workload did not accept: " + f.cause().getMessage(), start);
                return;
            }
            if (!request.isOpen()) {
                f.channel().close(); // the client went away while we dialled
                return;
            }
            TrafficMetrics.Connection counted = metrics.opened(labels, false);
            request.accept(f.channel(), counted).whenComplete((r, err) -> {
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

    private static Duration since(long start) {
        return Duration.ofNanos(System.nanoTime() - start);
    }
}
