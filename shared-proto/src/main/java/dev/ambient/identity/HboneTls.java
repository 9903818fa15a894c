package dev.ambient.identity;

import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolConfig.Protocol;
import io.netty.handler.ssl.ApplicationProtocolConfig.SelectedListenerFailureBehavior;
import io.netty.handler.ssl.ApplicationProtocolConfig.SelectorFailureBehavior;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Netty TLS contexts for HBONE: TLS 1.3 only, ALPN "h2" only, mutual authentication against the
 * given roots (several at once during a root rotation). Peers are identified by the SPIFFE id in
 * their certificate, never by host name.
 *
 * <p>Build a new context when the workload certificate or the roots change; connections already
 * open keep the old one.
 */
public final class HboneTls {

    public static final String PROTOCOL = "TLSv1.3";

    /**
     * A resumed session skips certificate validation, so resumption is allowed for an hour only,
     * far less than a workload certificate's 24 h (the JDK default would be 24 h).
     */
    private static final long SESSION_TIMEOUT_SECONDS = 3600;

    private static final ApplicationProtocolConfig ALPN_H2 = new ApplicationProtocolConfig(
            Protocol.ALPN,
            // the only choices both Netty engines support; an h2-less peer is caught by verifiedPeer
            SelectorFailureBehavior.NO_ADVERTISE,
            SelectedListenerFailureBehavior.ACCEPT,
            ApplicationProtocolNames.HTTP_2);

    private HboneTls() {}

    /** A server context that requires a client certificate chaining to one of {@code trustRoots}. */
    public static SslContext serverContext(WorkloadCertificate cert, List<X509Certificate> trustRoots) {
        return serverContext(cert, trustRoots, provider());
    }

    /** A client context presenting {@code cert} and trusting servers that chain to {@code trustRoots}. */
    public static SslContext clientContext(WorkloadCertificate cert, List<X509Certificate> trustRoots) {
        return clientContext(cert, trustRoots, provider());
    }

    static SslContext serverContext(WorkloadCertificate cert, List<X509Certificate> trustRoots, SslProvider provider) {
        return build(SslContextBuilder.forServer(new WorkloadKeyManager(cert)).clientAuth(ClientAuth.REQUIRE),
                trustRoots, provider);
    }

    static SslContext clientContext(WorkloadCertificate cert, List<X509Certificate> trustRoots, SslProvider provider) {
        return build(SslContextBuilder.forClient().keyManager(new WorkloadKeyManager(cert)), trustRoots, provider);
    }

    private static SslContext build(SslContextBuilder builder, List<X509Certificate> trustRoots, SslProvider provider) {
        try {
            return builder
                    .sslProvider(provider)
                    .protocols(PROTOCOL)
                    .trustManager(new PeerTrustManager(trustRoots))
                    .endpointIdentificationAlgorithm(null) // SPIFFE ids, not DNS names
                    .applicationProtocolConfig(ALPN_H2)
                    .sessionTimeout(SESSION_TIMEOUT_SECONDS)
                    .build();
        } catch (SSLException e) {
            throw new IllegalStateException("cannot build the HBONE TLS context (" + provider + ")", e);
        }
    }

    /**
     * BoringSSL (netty-tcnative) is usable: much faster than the JDK's TLS engine, so it is used
     * whenever present.
     */
    public static boolean openSslAvailable() {
        return OpenSsl.isAvailable() && OpenSsl.supportsKeyManagerFactory()
                && SslProvider.isTlsv13Supported(SslProvider.OPENSSL);
    }

    static SslProvider provider() {
        return openSslAvailable() ? SslProvider.OPENSSL : SslProvider.JDK;
    }

    /**
     * The peer's SPIFFE id: the single URI SAN of its (already validated) leaf certificate.
     *
     * @throws SSLPeerUnverifiedException when the peer sent no certificate or its leaf holds no
     *     single valid SPIFFE id
     */
    public static SpiffeId peerIdentity(SSLSession session) throws SSLPeerUnverifiedException {
        Certificate[] certs = session.getPeerCertificates();
        if (certs == null || certs.length == 0 || !(certs[0] instanceof X509Certificate leaf)) {
            throw new SSLPeerUnverifiedException("peer presented no X.509 certificate");
        }
        try {
            return SpiffeId.fromCertificate(leaf);
        } catch (IllegalArgumentException e) {
            throw new SSLPeerUnverifiedException("peer certificate carries no valid SPIFFE id: " + e.getMessage());
        }
    }

    /**
     * After a completed handshake: checks that "h2" was negotiated (with OpenSSL a peer offering
     * no ALPN still completes the handshake) and returns the peer's SPIFFE id.
     */
    public static SpiffeId verifiedPeer(SslHandler handler) throws SSLException {
        String protocol = handler.applicationProtocol();
        if (!ApplicationProtocolNames.HTTP_2.equals(protocol)) {
            throw new SSLHandshakeException("peer did not negotiate ALPN \"h2\" (got " + protocol + ")");
        }
        return peerIdentity(handler.engine().getSession());
    }
}
