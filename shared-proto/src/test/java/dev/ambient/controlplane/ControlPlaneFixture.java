package dev.ambient.controlplane;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.Pem;
import io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * For tests of control-plane clients (this module's test jar): a mesh root written where a proxy
 * would have it mounted, a token file, TLS for a stand-in server of a given Service name, and the
 * client endpoint that checks it.
 */
public final class ControlPlaneFixture {

    public final CertificateAuthority mesh = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
    public final Path rootFile;
    public final Path tokenFile;

    public ControlPlaneFixture(Path dir, String token) {
        try {
            Files.createDirectories(dir);
            rootFile = Files.writeString(dir.resolve("root-cert.pem"), Pem.encodeCertificate(mesh.root()));
            tokenFile = Files.writeString(dir.resolve("token"), token + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Server TLS with a certificate from the mesh root for {@code serverName}. */
    public SslContext serverTls(String serverName) {
        ServingKeyManager keys = new ServingKeyManager();
        keys.install(mesh.issueServer(List.of(serverName), Duration.ofHours(1)));
        return ControlPlaneTls.serverContext(keys);
    }

    /**
     * The certificates a TLS server at {@code host:port} presents to a client that offers only
     * {@code protocol} and ALPN h2 and trusts anything (to look at what is served, or to see an
     * older protocol refused: then an {@link javax.net.ssl.SSLException}).
     */
    public static java.security.cert.X509Certificate[] handshake(String host, int port, String protocol)
            throws java.io.IOException, java.security.GeneralSecurityException {
        javax.net.ssl.SSLContext context = javax.net.ssl.SSLContext.getInstance("TLS");
        context.init(null, new javax.net.ssl.TrustManager[] {new javax.net.ssl.X509TrustManager() {
            @Override
            public void checkClientTrusted(java.security.cert.X509Certificate[] chain, String authType) {
            }

            @Override
            public void checkServerTrusted(java.security.cert.X509Certificate[] chain, String authType) {
            }

            @Override
            public java.security.cert.X509Certificate[] getAcceptedIssuers() {
                return new java.security.cert.X509Certificate[0];
            }
        }}, null);
        try (javax.net.ssl.SSLSocket socket = (javax.net.ssl.SSLSocket) context.getSocketFactory().createSocket(host, port)) {
            socket.setEnabledProtocols(new String[] {protocol});
            socket.setSoTimeout(10_000);
            javax.net.ssl.SSLParameters parameters = socket.getSSLParameters();
            parameters.setApplicationProtocols(new String[] {"h2"});
            socket.setSSLParameters(parameters);
            socket.startHandshake();
            return (java.security.cert.X509Certificate[]) socket.getSession().getPeerCertificates();
        }
    }

    /** A stream observer that adds what arrives to {@code into} (a stand-in server's request side). */
    public static <T> io.grpc.stub.StreamObserver<T> collecting(java.util.Collection<T> into) {
        return new io.grpc.stub.StreamObserver<>() {
            @Override
            public void onNext(T value) {
                into.add(value);
            }

            @Override
            public void onError(Throwable t) {
            }

            @Override
            public void onCompleted() {
            }
        };
    }

    /** A client endpoint that dials {@code target} and expects {@code serverName}. */
    public ControlPlaneEndpoint endpoint(String target, String serverName) {
        return ControlPlaneEndpoint.of(target, Optional.of(serverName), MeshRootFile.load(rootFile), tokenFile);
    }
}
