package dev.ambient.ca;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLSession;
import org.junit.jupiter.api.Test;

/**
 * The CA's serving certificate rotates under live clients: with a 4 s certificate, a client keeps
 * its connection (and its calls keep working) past the first certificate's expiry, while every new
 * connection gets the current certificate. No restart.
 */
@QuarkusTest
@TestProfile(ServingCertificateRotationTest.ShortLived.class)
class ServingCertificateRotationTest {

    public static class ShortLived implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("ca.tls.certificate-lifetime", "4s");
        }
    }

    /** What one call saw of its connection: the server certificate's serial and our local address. */
    record Seen(String serial, SocketAddress local, Instant notAfter) {}

    static Seen call(ManagedChannel channel) {
        AtomicReference<Seen> seen = new AtomicReference<>();
        ClientInterceptor look = new ClientInterceptor() {
            @Override
            public <Q, A> ClientCall<Q, A> interceptCall(MethodDescriptor<Q, A> method, CallOptions options, Channel next) {
                return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
                    @Override
                    public void start(Listener<A> listener, Metadata headers) {
                        headers.put(CaClient.AUTHORIZATION, "Bearer box-sleep");
                        ClientCall<Q, A> call = this;
                        super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
                            @Override
                            public void onHeaders(Metadata h) {
                                SSLSession tls = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
                                try {
                                    X509Certificate leaf = (X509Certificate) tls.getPeerCertificates()[0];
                                    seen.set(new Seen(leaf.getSerialNumber().toString(16),
                                            call.getAttributes().get(Grpc.TRANSPORT_ATTR_LOCAL_ADDR),
                                            leaf.getNotAfter().toInstant()));
                                } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
                                    throw new IllegalStateException(e);
                                }
                                super.onHeaders(h);
                            }
                        }, headers);
                    }
                };
            }
        };
        CertificateServiceGrpc.newBlockingStub(channel).withInterceptors(look).withDeadlineAfter(10, TimeUnit.SECONDS)
                .getTrustBundle(TrustBundleRequest.getDefaultInstance());
        return seen.get();
    }

    @Test
    void openConnectionsLiveOnAndNewHandshakesGetTheRenewedCertificate() throws Exception {
        Path root = Path.of("target/test-ca/root-cert.pem");
        ManagedChannel kept = CaClient.channel(root, CaClient.SERVER_NAME);
        try {
            Seen first = call(kept);
            assertTrue(first.notAfter().isBefore(Instant.now().plusSeconds(6)), "a short-lived certificate: " + first);

            Seen renewed = first;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (renewed.serial().equals(first.serial()) && System.nanoTime() < deadline) {
                Thread.sleep(200);
                ManagedChannel fresh = CaClient.channel(root, CaClient.SERVER_NAME);
                try {
                    renewed = call(fresh);
                } finally {
                    fresh.shutdownNow();
                }
            }
            assertNotEquals(first.serial(), renewed.serial(), "a new connection gets a renewed certificate");

            while (Instant.now().isBefore(first.notAfter().plusSeconds(1))) {
                Thread.sleep(200);
            }
            Seen later = call(kept);
            assertEquals(first.serial(), later.serial(), "the open connection goes on, past its certificate's expiry");
            assertEquals(first.local(), later.local(), "on the same connection");
        } finally {
            kept.shutdownNow();
        }
    }
}
