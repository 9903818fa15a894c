package dev.ambient.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.OpenSslContext;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.lang.reflect.Proxy;
import java.security.KeyPair;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Real handshakes over loopback, for every pairing of the JDK and BoringSSL engines available. */
class HboneTlsTest {

    private static final String TD = "cluster.local";
    private static final SpiffeId SERVER = new SpiffeId(TD, "backend", "server");
    private static final SpiffeId CLIENT = new SpiffeId(TD, "frontend", "client");
    private static final Duration DAY = Duration.ofDays(1);

    private static Loopback loopback;
    private static CertificateAuthority ca;
    private static CertificateAuthority otherCa; // same trust domain, different root
    private static WorkloadCertificate serverCert;
    private static WorkloadCertificate clientCert;

    @BeforeAll
    static void setUp() {
        loopback = new Loopback();
        ca = CertificateAuthority.create(TD, Duration.ofDays(30));
        otherCa = CertificateAuthority.create(TD, Duration.ofDays(30));
        serverCert = ca.issue(SERVER, DAY);
        clientCert = ca.issue(CLIENT, DAY);
    }

    @AfterAll
    static void tearDown() {
        loopback.close();
    }

    /** server engine, client engine */
    static Stream<Arguments> engines() {
        List<Arguments> pairs = new ArrayList<>();
        pairs.add(Arguments.of(SslProvider.JDK, SslProvider.JDK));
        if (HboneTls.openSslAvailable()) {
            pairs.add(Arguments.of(SslProvider.OPENSSL, SslProvider.OPENSSL));
            pairs.add(Arguments.of(SslProvider.OPENSSL, SslProvider.JDK));
            pairs.add(Arguments.of(SslProvider.JDK, SslProvider.OPENSSL));
        }
        return pairs.stream();
    }

    private static List<X509Certificate> roots(CertificateAuthority... cas) {
        return Stream.of(cas).map(CertificateAuthority::root).toList();
    }

    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void workloadsOfTheSameCaAuthenticateEachOther(SslProvider serverEngine, SslProvider clientEngine) throws Exception {
        Loopback.Outcome outcome = loopback.connect(
                HboneTls.serverContext(serverCert, roots(ca), serverEngine),
                HboneTls.clientContext(clientCert, roots(ca), clientEngine));

        assertTrue(outcome.succeeded(), outcome::toString);
        SslHandler server = outcome.server().join();
        SslHandler client = outcome.client().join();
        assertEquals(CLIENT, HboneTls.peerIdentity(server.engine().getSession()));
        assertEquals(SERVER, HboneTls.peerIdentity(client.engine().getSession()));
        assertEquals(CLIENT, HboneTls.verifiedPeer(server));
        assertEquals(SERVER, HboneTls.verifiedPeer(client));
        assertEquals("h2", server.applicationProtocol());
        assertEquals("h2", client.applicationProtocol());
        assertEquals("TLSv1.3", server.engine().getSession().getProtocol());
        assertEquals("TLSv1.3", client.engine().getSession().getProtocol());
    }

    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void clientFromAnotherRootIsRejected(SslProvider serverEngine, SslProvider clientEngine) throws Exception {
        WorkloadCertificate stranger = otherCa.issue(CLIENT, DAY);
        Loopback.Outcome outcome = loopback.connect(
                HboneTls.serverContext(serverCert, roots(ca), serverEngine),
                HboneTls.clientContext(stranger, roots(ca), clientEngine));
        assertFalse(outcome.succeeded(), outcome::toString);
        // our PKIX trust manager said no (not, say, a missing certificate)
        assertCause(outcome.serverFailure(), "client certificate is not trusted");
        // TLS 1.3: the client finished its handshake before the server judged its certificate,
        // so the client learns of the rejection on its first read
        assertNotNull(outcome.clientFailure(), outcome::toString);
    }

    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void expiredServerCertificateIsRejected(SslProvider serverEngine, SslProvider clientEngine) throws Exception {
        KeyPair keys = CertificateRequests.newKeyPair();
        Instant now = Instant.now();
        WorkloadCertificate expired = new WorkloadCertificate(SERVER, keys.getPrivate(),
                ca.sign(keys.getPublic(), SERVER, now.minus(Duration.ofHours(2)), now.minus(Duration.ofHours(1))));
        Loopback.Outcome outcome = loopback.connect(
                HboneTls.serverContext(expired, roots(ca), serverEngine),
                HboneTls.clientContext(clientCert, roots(ca), clientEngine));
        assertFalse(outcome.succeeded(), outcome::toString);
        assertTrue(outcome.client().isCompletedExceptionally(), "the client must refuse the handshake");
        assertCause(outcome.clientFailure(), "server certificate is not trusted");
        assertCause(outcome.clientFailure(), "CertificateExpiredException");
        assertNotNull(outcome.serverFailure(), outcome::toString);
    }

    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void clientWithoutCertificateIsRejected(SslProvider serverEngine, SslProvider clientEngine) throws Exception {
        SslContext anonymous = SslContextBuilder.forClient()
                .sslProvider(clientEngine)
                .protocols("TLSv1.3")
                .trustManager(InsecureTrustManagerFactory.INSTANCE)
                .applicationProtocolConfig(H2)
                .build();
        Loopback.Outcome outcome = loopback.connect(HboneTls.serverContext(serverCert, roots(ca), serverEngine), anonymous);
        assertFalse(outcome.succeeded(), outcome::toString);
        assertNotNull(outcome.serverFailure(), "the server must refuse the handshake");
        assertNotNull(outcome.clientFailure(), outcome::toString);
    }

    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void serverFromAnotherRootIsRejected(SslProvider serverEngine, SslProvider clientEngine) throws Exception {
        WorkloadCertificate impostor = otherCa.issue(SERVER, DAY);
        Loopback.Outcome outcome = loopback.connect(
                HboneTls.serverContext(impostor, roots(ca), serverEngine),
                HboneTls.clientContext(clientCert, roots(ca), clientEngine));
        assertFalse(outcome.succeeded(), outcome::toString);
        assertTrue(outcome.client().isCompletedExceptionally(), outcome::toString);
        assertCause(outcome.clientFailure(), "server certificate is not trusted");
    }

    /** Root rotation: while both roots are trusted, certificates from either one are accepted. */
    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void certificatesFromEitherTrustedRootAreAccepted(SslProvider serverEngine, SslProvider clientEngine)
            throws Exception {
        CertificateAuthority oldCa = CertificateAuthority.create(TD, Duration.ofDays(30));
        CertificateAuthority newCa = CertificateAuthority.create(TD, Duration.ofDays(30));
        CertificateAuthority unrelated = CertificateAuthority.create(TD, Duration.ofDays(30));
        // both roots carry the same subject name, as Istio's do; only the keys tell them apart
        assertEquals(oldCa.root().getSubjectX500Principal(), newCa.root().getSubjectX500Principal());
        List<X509Certificate> both = roots(oldCa, newCa);

        for (CertificateAuthority serverCa : List.of(oldCa, newCa)) {
            SslContext server = HboneTls.serverContext(serverCa.issue(SERVER, DAY), both, serverEngine);
            for (CertificateAuthority clientCa : List.of(oldCa, newCa)) {
                Loopback.Outcome outcome = loopback.connect(server,
                        HboneTls.clientContext(clientCa.issue(CLIENT, DAY), both, clientEngine));
                assertTrue(outcome.succeeded(), outcome::toString);
                assertEquals(CLIENT, HboneTls.verifiedPeer(outcome.server().join()));
                assertEquals(SERVER, HboneTls.verifiedPeer(outcome.client().join()));
            }
            Loopback.Outcome outcome = loopback.connect(server,
                    HboneTls.clientContext(unrelated.issue(CLIENT, DAY), both, clientEngine));
            assertFalse(outcome.succeeded(), "a third root is still refused: " + outcome);
            assertCause(outcome.serverFailure(), "client certificate is not trusted");
        }
    }

    /** A plug-in (intermediate) CA: the peer sends its intermediate, we trust only the root. */
    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void certificatesFromAnIntermediateChainToTheRoot(SslProvider serverEngine, SslProvider clientEngine)
            throws Exception {
        CertificateAuthority intermediate = ca.createIntermediate(Duration.ofDays(7));
        WorkloadCertificate client = intermediate.issue(CLIENT, DAY);
        assertEquals(3, client.chain().size());
        Loopback.Outcome outcome = loopback.connect(
                HboneTls.serverContext(intermediate.issue(SERVER, DAY), roots(ca), serverEngine),
                HboneTls.clientContext(client, roots(ca), clientEngine));
        assertTrue(outcome.succeeded(), outcome::toString);
        assertEquals(CLIENT, HboneTls.verifiedPeer(outcome.server().join()));
        assertEquals(SERVER, HboneTls.verifiedPeer(outcome.client().join()));
    }

    /** A CA certificate, even a trusted root itself, is no workload identity. */
    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void aCaCertificateIsRefusedAsAPeerCertificate(SslProvider serverEngine, SslProvider clientEngine)
            throws Exception {
        CertificateAuthority intermediate = ca.createIntermediate(Duration.ofDays(7));
        SslContext presentingCa = SslContextBuilder.forClient()
                .sslProvider(clientEngine)
                .protocols("TLSv1.3")
                .keyManager(intermediate.signingKey(), intermediate.chainToRoot())
                .trustManager(InsecureTrustManagerFactory.INSTANCE)
                .applicationProtocolConfig(H2)
                .build();
        Loopback.Outcome outcome = loopback.connect(HboneTls.serverContext(serverCert, roots(ca), serverEngine),
                presentingCa);
        assertFalse(outcome.succeeded(), outcome::toString);
        assertCause(outcome.serverFailure(), "presented a CA certificate");
    }

    /**
     * With OpenSSL an h2-only server still completes a handshake with a client that offers no
     * ALPN; {@link HboneTls#verifiedPeer} is what keeps such a connection out.
     */
    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void aClientWithoutAlpnIsNotAcceptedAsHbone(SslProvider serverEngine, SslProvider clientEngine) throws Exception {
        SslContext noAlpn = SslContextBuilder.forClient()
                .sslProvider(clientEngine)
                .protocols("TLSv1.3")
                .keyManager(new WorkloadKeyManager(clientCert))
                .trustManager(InsecureTrustManagerFactory.INSTANCE)
                .build();
        Loopback.Outcome outcome = loopback.connect(HboneTls.serverContext(serverCert, roots(ca), serverEngine), noAlpn);
        if (!outcome.server().isCompletedExceptionally()) {
            SslHandler server = outcome.server().join();
            assertEquals(CLIENT, HboneTls.peerIdentity(server.engine().getSession()));
            SSLException refused = assertThrows(SSLException.class, () -> HboneTls.verifiedPeer(server));
            assertTrue(refused.getMessage().contains("h2"), refused.getMessage());
        }
    }

    /**
     * Later connections between the same contexts resume the TLS session (no certificates are
     * exchanged then); the peer's identity must still be there. TLS 1.3 sends the session ticket
     * after the handshake, so each reconnection first waits until the client holds a session (it
     * has read a ticket), and then it must resume whenever a BoringSSL end can say so. That end is
     * asked as its handshake completes: asked after the connection closed, as this test once did,
     * a freed engine answers "not reused", and a loaded run saw 20 connections in a row "not
     * resumed" that had all resumed.
     */
    @ParameterizedTest(name = "server {0}, client {1}")
    @MethodSource("engines")
    void peerIdentitySurvivesSessionResumption(SslProvider serverEngine, SslProvider clientEngine) throws Exception {
        SslContext server = HboneTls.serverContext(serverCert, roots(ca), serverEngine);
        SslContext client = HboneTls.clientContext(clientCert, roots(ca), clientEngine);
        Loopback.Outcome first = loopback.connect(server, client);
        assertTrue(first.succeeded(), first::toString);
        assertFalse(Boolean.TRUE.equals(resumed(first)), "nothing to resume on the first connection");
        for (int i = 1; i <= 3; i++) {
            awaitCachedSession(client);
            Loopback.Outcome outcome = loopback.connect(server, client);
            assertTrue(outcome.succeeded(), outcome::toString);
            assertEquals(CLIENT, HboneTls.verifiedPeer(outcome.server().join()));
            assertEquals(SERVER, HboneTls.verifiedPeer(outcome.client().join()));
            // Two JDK engines cannot say whether they resumed; the identities above still hold.
            Boolean resumed = resumed(outcome);
            assertTrue(resumed == null || resumed, "connection " + i + " did not resume its session");
        }
    }

    /** Whether a BoringSSL end of the connection resumed; null when both ends are the JDK's. */
    private static Boolean resumed(Loopback.Outcome outcome) {
        return outcome.serverResumed() != null ? outcome.serverResumed() : outcome.clientResumed();
    }

    /** Waits until the client context holds a session to offer, that is until it has read a ticket. */
    private static void awaitCachedSession(SslContext client) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!client.sessionContext().getIds().hasMoreElements()) {
            assertTrue(System.nanoTime() < deadline, "the client held no session after 10 s: it read no ticket");
            Thread.sleep(1);
        }
    }

    @Test
    void publicContextsUseBoringSslWhenAvailable() {
        SslContext server = HboneTls.serverContext(serverCert, roots(ca));
        SslContext client = HboneTls.clientContext(clientCert, roots(ca));
        assertTrue(server.isServer());
        assertTrue(client.isClient());
        assertEquals(HboneTls.openSslAvailable(), server instanceof OpenSslContext);
        assertEquals(HboneTls.openSslAvailable(), client instanceof OpenSslContext);
        assertEquals(List.of("h2"), server.applicationProtocolNegotiator().protocols());
        assertEquals(List.of("h2"), client.applicationProtocolNegotiator().protocols());
    }

    @Test
    void contextsNeedATrustRoot() {
        assertThrows(IllegalArgumentException.class, () -> HboneTls.serverContext(serverCert, List.of()));
        assertThrows(IllegalArgumentException.class, () -> HboneTls.clientContext(clientCert, List.of()));
    }

    @Test
    void peerIdentityReadsTheLeafUriSan() throws Exception {
        assertEquals(SERVER, HboneTls.peerIdentity(sessionWith(serverCert.chain().toArray(Certificate[]::new))));

        SSLPeerUnverifiedException none = assertThrows(SSLPeerUnverifiedException.class,
                () -> HboneTls.peerIdentity(sessionWith(new Certificate[0])));
        assertTrue(none.getMessage().contains("no X.509 certificate"), none.getMessage());

        // the root's URI SAN is spiffe://cluster.local: a trust domain, not a workload
        SSLPeerUnverifiedException notWorkload = assertThrows(SSLPeerUnverifiedException.class,
                () -> HboneTls.peerIdentity(sessionWith(new Certificate[] {ca.root()})));
        assertTrue(notWorkload.getMessage().contains("no valid SPIFFE id"), notWorkload.getMessage());
    }

    private static SSLSession sessionWith(Certificate[] peer) {
        return (SSLSession) Proxy.newProxyInstance(SSLSession.class.getClassLoader(),
                new Class<?>[] {SSLSession.class}, (proxy, method, args) -> {
                    if (method.getName().equals("getPeerCertificates")) {
                        return peer;
                    }
                    throw new UnsupportedOperationException(method.getName());
                });
    }

    private static final ApplicationProtocolConfig H2 = new ApplicationProtocolConfig(
            ApplicationProtocolConfig.Protocol.ALPN,
            ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
            ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, "h2");

    private static void assertCause(Throwable failure, String expected) {
        assertNotNull(failure, "expected a failure mentioning \"" + expected + "\"");
        String text = Loopback.causes(failure);
        assertTrue(text.contains(expected), () -> "expected \"" + expected + "\" in " + text);
    }
}
