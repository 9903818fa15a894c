package dev.ambient.ztunnel.inbound;

import dev.ambient.identity.SpiffeId;
import dev.ambient.net.OriginalDestination;
import dev.ambient.net.PendingReads;
import dev.ambient.net.SocketRelay;
import dev.ambient.net.Transport;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.guard.OwnListeners;
import dev.ambient.ztunnel.guard.SelfTarget;
import dev.ambient.ztunnel.identity.WorkloadIdentity;
import dev.ambient.ztunnel.metrics.AccessLog;
import dev.ambient.ztunnel.metrics.ConnectionLabels;
import dev.ambient.ztunnel.metrics.TrafficMetrics;
import dev.ambient.ztunnel.state.AuthorizationEvaluator;
import dev.ambient.ztunnel.state.StateSnapshot;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * Port 15006: plaintext connections to local workloads from outside the mesh, redirected here.
 * The same L4 policies apply, without an identity; PeerAuthentication STRICT refuses them. An
 * original destination on one of the ztunnel's own ports is refused: our dial to it would come back
 * here (our sockets are exempt from capture) with the same original destination, forever.
 */
public final class InboundPlaintextListener implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(InboundPlaintextListener.class);

    private final Transport transport;
    private final WorkloadStore store;
    private final AuthorizationEvaluator authorization;
    private final TrafficMetrics metrics;
    private final WorkloadDialer dialer;
    private final String nodeName;
    private final String trustDomain;
    private final OwnListeners ownListeners;
    private final BiFunction<StateSnapshot, InetAddress, Optional<Workload>> destinations;
    private final Consumer<Channel> onAccepted;
    private Channel server;

    public InboundPlaintextListener(Transport transport, WorkloadStore store, AuthorizationEvaluator authorization,
            TrafficMetrics metrics, WorkloadDialer dialer, String nodeName, String trustDomain,
            OwnListeners ownListeners) {
        this(transport, store, authorization, metrics, dialer, nodeName, trustDomain, ownListeners,
                (state, ip) -> state.workloadOnNode(ip, nodeName), ch -> { });
    }

    /**
     * @param destinations the local workload an original destination address belongs to (in-pod:
     *        only the pod whose namespace the listener lives in)
     * @param onAccepted sees every accepted connection (in-pod: counted for draining)
     */
    public InboundPlaintextListener(Transport transport, WorkloadStore store, AuthorizationEvaluator authorization,
            TrafficMetrics metrics, WorkloadDialer dialer, String nodeName, String trustDomain,
            OwnListeners ownListeners, BiFunction<StateSnapshot, InetAddress, Optional<Workload>> destinations,
            Consumer<Channel> onAccepted) {
        this.ownListeners = ownListeners;
        this.destinations = destinations;
        this.onAccepted = onAccepted;
        this.transport = transport;
        this.store = store;
        this.authorization = authorization;
        this.metrics = metrics;
        this.dialer = dialer;
        this.nodeName = nodeName;
        this.trustDomain = trustDomain;
    }

    public void bind(InetSocketAddress address) {
        server = transport.listen(address, new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                PendingReads.install(ch, 1 << 20);
                onAccepted.accept(ch);
                accepted(ch);
            }
        });
        LOG.infof("inbound: plaintext capture on %s", address);
    }

    private void accepted(Channel client) {
        long start = System.nanoTime();
        InetSocketAddress from = (InetSocketAddress) client.remoteAddress();
        Optional<InetSocketAddress> original = OriginalDestination.of(client);
        StateSnapshot state = store.current();
        Workload source = state.workloadByAddress(from.getAddress()).orElse(null);
        if (original.isEmpty()) {
            refuse(client, from, null, null, null, "no original destination: connection was not redirected", start);
            return;
        }
        InetSocketAddress dst = original.get();
        Optional<Workload> local = destinations.apply(state, dst.getAddress());
        if (ownListeners.check(dst, local.isPresent()) instanceof SelfTarget.Own own) {
            refuse(client, from, dst, source, local.orElse(null), own.reason(), start);
            return;
        }
        if (local.isEmpty()) {
            refuse(client, from, dst, source, null, dst.getAddress().getHostAddress()
                    + " is not a workload on node " + nodeName, start);
            return;
        }
        Workload destination = local.get();
        if (state.peerAuthenticationMode(destination, dst.getPort()) == PeerAuthentication.Mode.STRICT) {
            refuse(client, from, dst, source, destination, "PeerAuthentication STRICT: plaintext refused", start);
            return;
        }
        var decision = authorization.evaluate(state, destination,
                AuthorizationEvaluator.Request.plaintext(from.getAddress(), dst.getAddress(), dst.getPort()));
        if (!decision.allowed()) {
            refuse(client, from, dst, source, destination, decision.reason(), start);
            return;
        }
        SpiffeId destinationId = WorkloadIdentity.of(destination, trustDomain);
        dialer.dial(client.eventLoop(), dst, from).addListener(f -> {
            if (!f.isSuccess()) {
                refuse(client, from, dst, source, destination, "workload did not accept: " + f.cause().getMessage(),
                        start);
                return;
            }
            TrafficMetrics.Connection counted = metrics.opened(labels(source, destination, destinationId), true);
            SocketRelay.start(client, (Channel) f.getNow()).thenAccept(r -> {
                counted.bytes(r.aToB(), r.bToA());
                counted.closed();
                AccessLog.connection("inbound", from, "-", dst, destinationId.uri(), "plaintext", r.aToB(), r.bToA(),
                        Duration.ofNanos(System.nanoTime() - start), r.clean() ? "ok" : "error", r.reason());
            });
        });
    }

    private ConnectionLabels labels(Workload source, Workload destination, SpiffeId destinationId) {
        return ConnectionLabels.of("destination", source, null, destination, destinationId, null, false);
    }

    private void refuse(Channel client, InetSocketAddress from, InetSocketAddress dst, Workload source,
            Workload destination, String reason, long start) {
        client.config().setOption(ChannelOption.SO_LINGER, 0);
        client.close();
        metrics.failed(labels(source, destination,
                destination == null ? null : WorkloadIdentity.of(destination, trustDomain)), "DENY");
        AccessLog.connection("inbound", from, "-", dst, "-", "plaintext", 0, 0,
                Duration.ofNanos(System.nanoTime() - start), "refused", reason);
    }

    /** The listening socket, once bound. */
    public Channel channel() {
        return server;
    }

    @Override
    public void close() {
        if (server != null) {
            server.close().syncUninterruptibly();
        }
    }
}
