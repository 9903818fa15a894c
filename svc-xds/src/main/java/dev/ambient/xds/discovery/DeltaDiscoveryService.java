package dev.ambient.xds.discovery;

import dev.ambient.auth.AuthenticationFailure;
import dev.ambient.auth.CallerCredentials;
import dev.ambient.auth.CredentialsInterceptor;
import dev.ambient.auth.TokenAuthenticator;
import dev.ambient.proto.discovery.DeltaDiscovery;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.xds.security.StreamAuthorizer;
import io.quarkus.grpc.GrpcService;
import io.quarkus.grpc.RegisterInterceptor;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.smallrye.mutiny.subscription.BackPressureStrategy;
import io.smallrye.mutiny.subscription.Cancellable;
import jakarta.inject.Inject;
import java.util.Locale;
import org.jboss.logging.Logger;

/**
 * The delta discovery server (gRPC {@code ambient.v1.DeltaDiscovery/DeltaStream}, port 15010, TLS
 * 1.3 only): one long-lived stream per ztunnel or waypoint. A stream is served only once its
 * service-account token is authenticated (on a worker thread: a TokenReview blocks) and its first
 * Node is granted by {@link StreamAuthorizer}; the protocol logic lives in {@link ClientConnection};
 * this class only wires a stream to it.
 *
 * <p>Requests are moved off the event loop onto the push pool in order ({@code emitOn} keeps a
 * stream's order). Responses go out through an emitter whose buffer is bounded by construction:
 * a client has at most one unacknowledged response per subscribed type (see
 * {@link ClientConnection}), so the buffer never holds more than one response per type.
 */
@GrpcService
@RegisterInterceptor(XdsCredentialsInterceptor.class)
public class DeltaDiscoveryService implements DeltaDiscovery {

    private static final Logger LOG = Logger.getLogger(DeltaDiscoveryService.class);

    @Inject
    DiscoveryHub hub;

    @Inject
    TokenAuthenticator authenticator;

    @Inject
    StreamAuthorizer authorizer;

    @Override
    public Multi<DeltaDiscoveryResponse> deltaStream(Multi<DeltaDiscoveryRequest> requests) {
        // read the gRPC context here, on the calling thread: it does not follow us to the worker
        CallerCredentials credentials = CredentialsInterceptor.current();
        return Uni.createFrom().item(() -> credentials.authenticate(authenticator))
                .runSubscriptionOn(Infrastructure.getDefaultWorkerPool())
                .onFailure(AuthenticationFailure.class).transform(failure -> {
                    AuthenticationFailure refused = (AuthenticationFailure) failure;
                    LOG.warnf("xds: refusing a stream from %s [%s]: %s", credentials.address(),
                            refused.kind().name().toLowerCase(Locale.ROOT), refused.getMessage());
                    hub.metrics().refused(refused.kind().name().toLowerCase(Locale.ROOT));
                    return refused.toStatus();
                })
                .onItem().transformToMulti(caller -> Multi.createFrom().<DeltaDiscoveryResponse>emitter(out -> {
                    ClientConnection c = new ClientConnection(hub, out, caller, credentials.address(), authorizer);
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
                }, BackPressureStrategy.BUFFER));
    }
}
