package dev.ambient.controlplane;

import io.grpc.netty.NettyServerBuilder;
import io.quarkus.grpc.api.ServerBuilderCustomizer;
import io.quarkus.grpc.runtime.config.GrpcServerConfiguration;
import io.vertx.grpc.VertxServerBuilder;
import io.vertx.grpc.server.GrpcServerOptions;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;

/**
 * Makes Quarkus's separate gRPC server (a grpc-netty server on Vert.x's event loops, built by
 * {@code VertxServerBuilder}) serve TLS with the certificate a {@link ServingKeyManager} holds
 * now, so it rotates without a restart. Quarkus's own {@code quarkus.grpc.server.ssl.*} keys only
 * read files once at start; here they must say the same: {@code plain-text=false},
 * {@code ssl.protocols=TLSv1.3}, {@code ssl.client-auth=NONE}. Anything else refuses to start,
 * so a configuration mistake can never serve the control plane in clear.
 *
 * <p>A service registers one as a bean (a {@code @Singleton} subclass that also keeps the
 * certificate fresh). The server is built by {@link ControlPlaneServerProvider}, so TLS is
 * grpc-java's own negotiator (TLS 1.3, ALPN h2), set here with the rest of the limits, not
 * Vert.x's: Vert.x's would replace it at start, and with it the bound on handshaking connections.
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
        if (!ControlPlaneServerProvider.made(builder)) {
            throw new IllegalStateException("the control-plane gRPC server must be built by " + ControlPlaneServerProvider.class
                    .getName() + " (META-INF/services of shared-proto; another GrpcBuilderProvider on the class path?):"
                    + " otherwise its TLS would not be the one that bounds handshaking connections");
        }
        keepAlive(config.netty(), builder.nettyBuilder());
        GrpcServerLimits.from(ConfigProvider.getConfig()).applyTo(builder, ControlPlaneTls.serverContext(keys),
                "control-plane gRPC server");
    }

    /** {@code quarkus.grpc.server.netty.*}: Quarkus applies them only to servers it builds itself. */
    private static void keepAlive(GrpcServerConfiguration.GrpcServerNettyConfig config, NettyServerBuilder builder) {
        config.keepAliveTime().ifPresent(time -> builder.keepAliveTime(time.toNanos(), TimeUnit.NANOSECONDS));
        config.permitKeepAliveTime().ifPresent(time -> builder.permitKeepAliveTime(time.toNanos(), TimeUnit.NANOSECONDS));
        config.permitKeepAliveWithoutCalls().ifPresent(builder::permitKeepAliveWithoutCalls);
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
