package dev.ambient.controlplane;

import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.net.URI;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * Where and how a proxy (or svc-xds) reaches svc-ca or svc-xds: a TLS 1.3 channel that verifies
 * the server against the mesh root in a mounted file and its DNS name, and the service-account
 * token sent with every call. There is no plaintext variant.
 *
 * @param target {@code host:port} dialled (a Service name, or an IP)
 * @param serverName the DNS name the server's certificate must carry; when {@code target} is an
 *     IP this is the Service name (also sent as SNI and {@code :authority})
 * @param roots the mesh roots, from the mounted {@code istio-ca-root-cert}
 * @param token the caller's service-account token file
 */
public record ControlPlaneEndpoint(String target, String serverName, MeshRootFile roots, ServiceAccountToken token) {

    /** The server name defaults to the host of {@code target}. */
    public static ControlPlaneEndpoint of(String target, Optional<String> serverName, MeshRootFile roots, Path tokenFile) {
        String name = serverName.filter(n -> !n.isBlank()).orElseGet(() -> host(target));
        return new ControlPlaneEndpoint(target, name, roots, new ServiceAccountToken(tokenFile));
    }

    /** A new channel; {@code tuning} may set message sizes, keep-alives... but not the transport security. */
    public ManagedChannel open(UnaryOperator<NettyChannelBuilder> tuning) {
        NettyChannelBuilder builder = NettyChannelBuilder.forTarget(target)
                .sslContext(ControlPlaneTls.clientContext(new ServerNameTrustManager(roots, serverName)))
                .overrideAuthority(serverName);
        return tuning.apply(builder).useTransportSecurity().build();
    }

    static String host(String target) {
        try {
            String host = URI.create("dns://" + target).getHost();
            if (host == null || host.isEmpty()) {
                throw new IllegalArgumentException("no host");
            }
            return host.startsWith("[") ? host.substring(1, host.length() - 1) : host;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("control-plane address \"" + target + "\" is not host:port", e);
        }
    }

    @Override
    public String toString() {
        return target + (target.startsWith(serverName + ":") ? "" : " (as " + serverName + ")");
    }
}
