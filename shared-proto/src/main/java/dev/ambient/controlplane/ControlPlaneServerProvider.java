package dev.ambient.controlplane;

import io.grpc.ManagedChannelBuilder;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.quarkus.arc.Arc;
import io.quarkus.grpc.runtime.config.GrpcClientConfiguration;
import io.quarkus.grpc.runtime.config.GrpcServerConfiguration;
import io.quarkus.grpc.spi.GrpcBuilderProvider;
import io.quarkus.runtime.LaunchMode;
import io.quarkus.runtime.ShutdownContext;
import io.vertx.core.Vertx;
import io.vertx.grpc.VertxServer;
import io.vertx.grpc.VertxServerBuilder;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;

/**
 * Builds the control plane's gRPC server (Quarkus's separate server, a grpc-netty server on
 * Vert.x's event loops) the way Quarkus does, less Quarkus's TLS step, so that
 * {@link ServingTlsCustomizer} can set grpc-java's TLS negotiator itself: when Quarkus sets up TLS,
 * Vert.x replaces any negotiator with its own when the server starts, and a negotiator is the only
 * hook grpc-java offers on a connection between accept and TLS ({@link HandshakingConnections}).
 * Vert.x also sets the channel factory and event loops at start, so those are no hook.
 *
 * <p>Found by Quarkus through {@code META-INF/services}; it serves only an application with a
 * {@link ServingTlsCustomizer} bean (svc-ca, svc-xds), so other services that carry shared-proto
 * build their servers as before. It makes no channels.
 */
public final class ControlPlaneServerProvider implements GrpcBuilderProvider<VertxServerBuilder> {

    /** The builders made here: {@link ServingTlsCustomizer} refuses any other (TLS would not be ours). */
    private static final Set<VertxServerBuilder> MADE = Collections.synchronizedSet(
            Collections.newSetFromMap(new WeakHashMap<>()));

    static boolean made(VertxServerBuilder builder) {
        return MADE.contains(builder);
    }

    @Override
    public boolean providesServer(GrpcServerConfiguration configuration) {
        return Arc.container() != null && !Arc.container().select(ServingTlsCustomizer.class).isUnsatisfied();
    }

    @Override
    public ServerBuilder<VertxServerBuilder> createServerBuilder(Vertx vertx, GrpcServerConfiguration configuration,
            LaunchMode launchMode) {
        int port = launchMode == LaunchMode.TEST ? configuration.testPort() : configuration.port();
        VertxServerBuilder builder = VertxServerBuilder.forAddress(vertx, configuration.host(), port);
        MADE.add(builder);
        return builder;
    }

    /** Quarkus starts a {@link VertxServer} itself, except in dev mode, which calls this. */
    @Override
    public void startServer(Server server) throws Exception {
        server.start();
    }

    @Override
    public void postStartup(Server server, ShutdownContext shutdown) {
        shutdown.addShutdownTask(server::shutdown);
    }

    @Override
    public void devModeReload(List<ServerServiceDefinition> servicesWithInterceptors,
            Map<String, ServerMethodDefinition<?, ?>> methods, List<ServerInterceptor> globalInterceptors,
            ShutdownContext shutdown) {
        throw new UnsupportedOperationException("the control-plane gRPC server has no live reload: restart dev mode");
    }

    @Override
    public boolean serverAlreadyExists() {
        return false;
    }

    @Override
    public String serverInfo(String host, int port, GrpcServerConfiguration configuration) {
        return "control-plane gRPC server on " + host + ":" + port + " (TLS)";
    }

    @Override
    public boolean providesChannel(GrpcClientConfiguration configuration) {
        return false;
    }

    @Override
    public String resolver() {
        throw new UnsupportedOperationException("no channels");
    }

    @Override
    public ManagedChannelBuilder<?> createChannelBuilder(GrpcClientConfiguration configuration, String target) {
        throw new UnsupportedOperationException("no channels");
    }

    @Override
    public String channelInfo(GrpcClientConfiguration configuration) {
        throw new UnsupportedOperationException("no channels");
    }
}
