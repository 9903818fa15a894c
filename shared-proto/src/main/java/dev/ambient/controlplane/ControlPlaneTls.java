package dev.ambient.controlplane;

import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.util.Set;
import javax.net.ssl.SSLException;
import javax.net.ssl.X509TrustManager;

/**
 * TLS of the control plane's gRPC (svc-ca 15012, svc-xds 15010): TLS 1.3 only, ALPN h2, the
 * JDK's engine (the connections are few and long-lived; the JDK engine calls the key manager on
 * every handshake, which is what makes rotation without a restart work). Servers present a
 * certificate from the mesh root with their Service DNS names; clients verify it against the
 * mounted root and the expected name ({@link ServerNameTrustManager}).
 */
public final class ControlPlaneTls {

    public static final String PROTOCOL = "TLSv1.3";
    public static final Set<String> PROTOCOLS = Set.of(PROTOCOL);

    private ControlPlaneTls() {}

    /** A grpc-netty server context serving what {@code keys} holds (the control plane's gRPC servers, tests). */
    public static SslContext serverContext(ServingKeyManager keys) {
        try {
            return GrpcSslContexts.configure(SslContextBuilder.forServer(keys), SslProvider.JDK)
                    .protocols(PROTOCOL).build();
        } catch (SSLException e) {
            throw new IllegalStateException("cannot build the control-plane server TLS context", e);
        }
    }

    /** A grpc-netty client context that accepts only what {@code trust} accepts. */
    public static SslContext clientContext(X509TrustManager trust) {
        try {
            return GrpcSslContexts.configure(SslContextBuilder.forClient().trustManager(trust), SslProvider.JDK)
                    .protocols(PROTOCOL).build();
        } catch (SSLException e) {
            throw new IllegalStateException("cannot build the control-plane client TLS context", e);
        }
    }
}
