package dev.ambient.ca;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.controlplane.ControlPlaneFixture;
import dev.ambient.identity.Pem;
import dev.ambient.identity.ServingCertificate;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.test.junit.QuarkusTest;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import org.junit.jupiter.api.Test;

/**
 * The CA's gRPC port speaks TLS 1.3 only, with a certificate the CA issued itself from its root
 * for its Service names: what a proxy with the mounted root verifies. Plaintext and older TLS are
 * refused; so is a client that expects another server name.
 */
@QuarkusTest
class CaServingTlsTest {

    static final Path ROOT = Path.of("target/test-ca/root-cert.pem");

    @Test
    void theServedCertificateNamesTheServiceAndChainsToTheMeshRoot() throws Exception {
        X509Certificate[] served = handshake("TLSv1.3");
        X509Certificate leaf = served[0];
        assertEquals(List.of("ca.istio-system.svc", "ca.istio-system.svc.cluster.local"), ServingCertificate.dnsNames(leaf));
        assertEquals(List.of("1.3.6.1.5.5.7.3.1"), leaf.getExtendedKeyUsage());
        X509Certificate root = Pem.decodeCertificates(Files.readString(ROOT)).getFirst();
        leaf.verify(root.getPublicKey());
        assertEquals(1, served.length, "the root is not sent: the client has it mounted");
        Duration lifetime = Duration.between(leaf.getNotBefore().toInstant(), leaf.getNotAfter().toInstant());
        assertTrue(lifetime.compareTo(Duration.ofHours(12).plusMinutes(1)) <= 0, "short-lived: " + lifetime);

        try (CaClient ca = CaClient.standalone()) {
            assertEquals(1, ca.stub("box-sleep").getTrustBundle(TrustBundleRequest.getDefaultInstance()).getRootsCount());
        }
    }

    @Test
    void plaintextAndOlderTlsAreRefused() throws Exception {
        ManagedChannel plain = ManagedChannelBuilder.forAddress("127.0.0.1", CaClient.GRPC_TEST_PORT).usePlaintext().build();
        try {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> CertificateServiceGrpc
                    .newBlockingStub(plain).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .getTrustBundle(TrustBundleRequest.getDefaultInstance()));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.getStatus().toString());
        } finally {
            plain.shutdownNow();
        }
        // the HTTP/2 preface in clear gets no HTTP/2 answer, only the end of the connection
        try (Socket socket = new Socket("127.0.0.1", CaClient.GRPC_TEST_PORT)) {
            socket.setSoTimeout(10_000);
            OutputStream out = socket.getOutputStream();
            out.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            byte[] answer = in.readNBytes(64);
            assertTrue(answer.length == 0 || answer[0] == 0x15, "nothing but a TLS alert comes back");
        }
        assertThrows(SSLException.class, () -> handshake("TLSv1.2"));
    }

    @Test
    void aClientExpectingAnotherServerNameRefusesTheCa() {
        ManagedChannel asXds = CaClient.channel(ROOT, "xds.istio-system.svc");
        try {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> CertificateServiceGrpc
                    .newBlockingStub(asXds).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .getTrustBundle(TrustBundleRequest.getDefaultInstance()));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
        } finally {
            asXds.shutdownNow();
        }
    }

    /** The certificates the CA presents to a client of {@code protocol} that trusts anything. */
    static X509Certificate[] handshake(String protocol) throws Exception {
        return ControlPlaneFixture.handshake("127.0.0.1", CaClient.GRPC_TEST_PORT, protocol);
    }
}
