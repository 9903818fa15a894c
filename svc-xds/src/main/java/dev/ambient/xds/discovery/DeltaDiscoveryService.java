package dev.ambient.xds.discovery;

import dev.ambient.proto.discovery.DeltaDiscovery;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import io.quarkus.grpc.GrpcService;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.subscription.BackPressureStrategy;
import io.smallrye.mutiny.subscription.Cancellable;
import jakarta.inject.Inject;

/**
 * The delta discovery server (gRPC {@code ambient.v1.DeltaDiscovery/DeltaStream}, port 15010):
 * one long-lived stream per ztunnel or waypoint. The protocol logic lives in
 * {@link ClientConnection}; this class only wires a stream to it.
 *
 * <p>Requests are moved off the event loop onto the push pool in order ({@code emitOn} keeps a
 * stream's order). Responses go out through an emitter whose buffer is bounded by construction:
 * a client has at most one unacknowledged response per subscribed type (see
 * {@link ClientConnection}), so the buffer never holds more than one response per type.
 */
@GrpcService
public class DeltaDiscoveryService implements DeltaDiscovery {

    @Inject
    DiscoveryHub hub;

    @Override
    public Multi<DeltaDiscoveryResponse> deltaStream(Multi<DeltaDiscoveryRequest> requests) {
        return Multi.createFrom().<DeltaDiscoveryResponse>emitter(out -> {
            ClientConnection c = new ClientConnection(hub, out);
            Cancellable in = requests.emitOn(hub.pushPool()).subscribe().with(c::onRequest, c::onInboundFailure,
                    c::onInboundCompleted);
            out.onTermination(() -> {
                in.cancel();
                // Off the event loop: close() waits for a push in progress on this connection.
                try {
                    hub.pushPool().execute(c::close);
                } catch (java.util.concurrent.RejectedExecutionException shuttingDown) {
                    c.close();
                }
            });
        }, BackPressureStrategy.BUFFER);
    }
}
