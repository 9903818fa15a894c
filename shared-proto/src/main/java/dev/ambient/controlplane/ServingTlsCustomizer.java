package dev.ambient.controlplane;

import io.quarkus.grpc.api.ServerBuilderCustomizer;
import io.quarkus.grpc.runtime.config.GrpcServerConfiguration;
import io.vertx.grpc.VertxServerBuilder;
import io.vertx.grpc.server.GrpcServerOptions;
import org.eclipse.microprofile.config.ConfigProvider;

/**
 * Makes Quarkus's separate gRPC server (a grpc-netty server on Vert.x's event loops, built by
 * {@code VertxServerBuilder}) serve TLS with the certificate a {@link ServingKeyManager} holds
 * now, so it rotates without a restart. Quarkus's own {@code quarkus.grpc.server.ssl.*} keys only
 * read files once at start; here they supply the rest: {@code plain-text=false},
 * {@code ssl.protocols=TLSv1.3}, {@code ssl.client-auth=NONE}. Anything else refuses to start,
 * so a configuration mistake can never serve the control plane in clear.
 *
 * <p>A service registers one as a bean (a {@code @Singleton} subclass that also keeps the
 * certificate fresh); Quarkus applies it to the server builder before its own SSL options, which
 * leave our key material in place when no certificate file is configured.
 *
 * <p>It also applies {@link GrpcServerLimits} ({@code control-plane.grpc.*}): what one peer may
 * make the server hold, which grpc-java leaves unbounded by default.
 */
public class ServingTlsCustomizer implements ServerBuilderCustomizer<VertxServerBuilder> {

    private final ServingKeyManager keys;

    public ServingTlsCustomizer(ServingKeyManager keys) {
        this.keys = keys;
    }

    /** What the server presents: install a renewed certificate here. */
    protected ServingKeyManager keys() {
        return keys;
    }

    @Override
    public void customize(GrpcServerConfiguration config, VertxServerBuilder builder) {
        check(config);
        builder.useSsl(options -> ControlPlaneTls.serve(options, keys));
        GrpcServerLimits.from(ConfigProvider.getConfig()).applyTo(builder, "control-plane gRPC server");
    }

    @Override
    public void customize(GrpcServerConfiguration config, GrpcServerOptions options) {
        throw new IllegalStateException("the control plane's gRPC must run on Quarkus's separate gRPC server "
                + "(quarkus.grpc.server.use-separate-server=true): only that one takes a rotating key manager");
    }

    static void check(GrpcServerConfiguration config) {
        if (config.isPlainTextEnabled()) {
            throw new IllegalStateException("quarkus.grpc.server.plain-text must be false: the control plane "
                    + "serves TLS only");
        }
        if (config.ssl().certificate().isPresent() || config.ssl().keyStore().isPresent()) {
            throw new IllegalStateException("quarkus.grpc.server.ssl.certificate/key-store must not be set: the "
                    + "serving certificate comes from the mesh root and rotates without a restart");
        }
        if (!ControlPlaneTls.PROTOCOLS.equals(config.ssl().protocols())) {
            throw new IllegalStateException("quarkus.grpc.server.ssl.protocols must be " + ControlPlaneTls.PROTOCOL
                    + " only, not " + config.ssl().protocols());
        }
    }
}
