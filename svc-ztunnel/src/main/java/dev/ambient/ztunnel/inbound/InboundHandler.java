package dev.ambient.ztunnel.inbound;

import dev.ambient.hbone.Authority;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.HboneLimit;
import dev.ambient.hbone.HboneRequest;
import dev.ambient.hbone.HboneRequestHandler;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.guard.OwnListeners;
import dev.ambient.ztunnel.guard.SelfTarget;
import dev.ambient.ztunnel.metrics.AccessLog;
import dev.ambient.ztunnel.metrics.ConnectionLabels;
import dev.ambient.ztunnel.metrics.TrafficMetrics;
import dev.ambient.ztunnel.state.AuthorizationEvaluator;
import dev.ambient.ztunnel.state.StateSnapshot;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.netty.channel.Channel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Function;

/**
 * Inbound HBONE for one local workload: the CONNECT must name this workload's own address on a port
 * that is not one of the ztunnel's own, the peer's identity must pass L4 authorization, then we dial
 * the workload and relay. The client's address is the connection's source, or what {@code Forwarded}
 * says when the peer is the destination's own waypoint.
 * 400: not for this workload, or one of our own listeners; 401: denied by policy; 503: the workload
 * does not answer.
 */
public final class InboundHandler implements HboneRequestHandler {

    /** What every inbound handler of a node shares. */
    public record Shared(WorkloadStore store, AuthorizationEvaluator authorization, TrafficMetrics metrics,
            OwnListeners ownListeners, String trustDomain) {
    }

    private final String workloadUid;
    private final Function<StateSnapshot, Optional<Workload>> local;
    private final SpiffeId workloadIdentity;
    private final Shared shared;
    private final WorkloadDialer dialer;

    public InboundHandler(String workloadUid, SpiffeId workloadIdentity, Shared shared, WorkloadDialer dialer) {
        this(workloadUid, s -> s.workloadByUid(workloadUid), workloadIdentity, shared, dialer);
    }

    /**
     * @param local finds the workload served, in the current state (in-pod: by the pod's name, or
     *        what the Add request said when the control plane does not know the pod yet)
     */
    public InboundHandler(String workloadUid, Function<StateSnapshot, Optional<Workload>> local,
            SpiffeId workloadIdentity, Shared shared, WorkloadDialer dialer) {
        this.workloadUid = workloadUid;
        this.local = local;
        this.workloadIdentity = workloadIdentity;
        this.shared = shared;
        this.dialer = dialer;
    }

    @Override
    public void handle(HboneRequest request) {
        long start = System.nanoTime();
        StateSnapshot state = shared.store().current();
        SpiffeId peer = request.peer();
        InetSocketAddress target = request.target();
        Optional<Workload> local = this.local.apply(state);
        if (local.isEmpty() || !hasAddress(local.get(), target.getAddress())) {
            InetSocketAddress source = request.connectionSource();
            refuse(request, 400, "BR", source, peer, null, sourceWorkload(state, source), target,
                    "authority " + Authority.format(target) + " is not workload " + workloadUid + " served here", start);
            return;
        }
        Workload destination = local.get();
        ForwardedTrust.ClientAddress client = clientAddress(state, destination, request);
        InetSocketAddress source = client.address();
        Workload sourceWorkload = sourceWorkload(state, source);
        if (shared.ownListeners().check(target, true) instanceof SelfTarget.Own own) {
            refuse(request, 400, "BR", source, peer, destination, sourceWorkload, target,
                    withNote(own.reason(), client.note()), start);
            return;
        }
        var decision = shared.authorization().evaluate(state, destination, new AuthorizationEvaluator.Request(
                Optional.of(peer.principal()), Optional.of(peer.namespace()), source.getAddress(),
                target.getAddress(), target.getPort()));
        if (!decision.allowed()) {
            refuse(request, 401, "DENY", source, peer, destination, sourceWorkload, target,
                    withNote(decision.reason(), client.note()), start);
            return;
        }
        ConnectionLabels labels = ConnectionLabels.of("destination", sourceWorkload, peer, destination,
                workloadIdentity, null, true);
        TrafficMetrics metrics = shared.metrics();
        dialer.dial(request.eventLoop(), target, source).addListener(f -> {
            if (!f.isSuccess()) {
                refuse(request, 503, "UF", source, peer, destination, sourceWorkload, target,
                        withNote("workload did not accept: " + f.cause().getMessage(), client.note()), start);
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
                        r != null && r.clean() ? "ok" : "error",
                        withNote(r == null ? String.valueOf(err) : r.reason(), client.note()));
            });
        });
    }

    /** The client's address: the connection's, unless the destination's own waypoint says otherwise. */
    private ForwardedTrust.ClientAddress clientAddress(StateSnapshot state, Workload destination,
            HboneRequest request) {
        CharSequence header = request.headers().get(HboneHeaders.FORWARDED);
        boolean fromWaypoint = header != null
                && ForwardedTrust.waypointsOf(state, destination, shared.trustDomain()).contains(request.peer());
        return ForwardedTrust.decide(request.connectionSource(), Optional.ofNullable(header).map(Object::toString),
                request.forwardedFor(), request.peer(), fromWaypoint);
    }

    private static Workload sourceWorkload(StateSnapshot state, InetSocketAddress source) {
        return state.workloadByAddress(source.getAddress()).orElse(null);
    }

    private void refuse(HboneRequest request, int status, String flag, InetSocketAddress source, SpiffeId peer,
            Workload destination, Workload sourceWorkload, InetSocketAddress target, String reason, long start) {
        request.reject(status, reason);
        shared.metrics().failed(ConnectionLabels.of("destination", sourceWorkload, peer, destination,
                workloadIdentity, null, true), flag);
        AccessLog.connection("inbound", source, peer.uri(), target, workloadIdentity.uri(), "hbone", 0, 0,
                since(start), "refused " + status, reason);
    }

    @Override
    public void refused(SocketAddress remote, String reason) {
        shared.metrics().handshakeRefused(reason.startsWith("400") ? "bad_request"
                : reason.startsWith("TLS") ? "tls" : "other");
        AccessLog.connection("inbound", (InetSocketAddress) remote, "-", null, workloadIdentity.uri(), "hbone", 0, 0,
                Duration.ZERO, "refused", reason);
    }

    @Override
    public void limitReached(SocketAddress remote, HboneLimit limit, String detail) {
        shared.metrics().handshakeRefused(limit.tag());
        AccessLog.connection("inbound", (InetSocketAddress) remote, "-", null, workloadIdentity.uri(), "hbone", 0, 0,
                Duration.ZERO, "limited", limit.tag() + ": " + detail);
    }

    /** A refusal at accept whose log line is held back: counted all the same. */
    @Override
    public void limitCounted(SocketAddress remote, HboneLimit limit) {
        shared.metrics().handshakeRefused(limit.tag());
    }

    private static String withNote(String reason, String note) {
        return note.isEmpty() ? reason : reason + "; " + note;
    }

    private static boolean hasAddress(Workload w, InetAddress ip) {
        com.google.protobuf.ByteString raw = com.google.protobuf.ByteString.copyFrom(ip.getAddress());
        return w.getAddressesList().contains(raw);
    }

    private static Duration since(long start) {
        return Duration.ofNanos(System.nanoTime() - start);
    }
}
