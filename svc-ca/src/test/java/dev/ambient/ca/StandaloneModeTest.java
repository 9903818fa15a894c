package dev.ambient.ca;

import static dev.ambient.ca.CaClient.refused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.ca.TrustBundleRequest;
import io.grpc.Status;
import io.quarkus.test.junit.QuarkusTest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Standalone mode, as the mesh in a box runs it (the test profile's default, see
 * application.properties): root in a directory, tokens from a file, pods from YAML files.
 */
@QuarkusTest
class StandaloneModeTest {

    static final SpiffeId SLEEP = new SpiffeId("cluster.local", "default", "sleep");
    static final SpiffeId HTTPBIN = new SpiffeId("cluster.local", "default", "httpbin");
    static CaClient ca;

    @BeforeAll
    static void connect() {
        ca = CaClient.standalone();
    }

    @AfterAll
    static void disconnect() throws InterruptedException {
        ca.close();
    }

    @Test
    void workloadGetsItsIdentitySignedByTheRootInTheDirectory() throws Exception {
        List<X509Certificate> chain = ca.sign("box-sleep", SLEEP, 0, Map.of());

        X509Certificate root = Pem.decodeCertificates(Files.readString(Path.of("target/test-ca/root-cert.pem"))).getFirst();
        assertEquals(SLEEP, SpiffeId.fromCertificate(chain.getFirst()));
        assertEquals(root, chain.getLast());
        CaClient.verifies(chain, root);
        assertEquals(List.of(Pem.encodeCertificate(root)),
                ca.stub("box-sleep").getTrustBundle(TrustBundleRequest.getDefaultInstance()).getRootsList());
    }

    @Test
    void ztunnelOfTheTokenFileGetsPodsOfItsNodeFromThePodFiles() {
        ca.sign("box-ztunnel-a", HTTPBIN, 0, Map.of(
                "impersonated-identity", HTTPBIN.uri(), "pod-name", "httpbin-1", "pod-namespace", "default"));
        String why = refused(Status.Code.PERMISSION_DENIED, () -> ca.sign("box-ztunnel-a", HTTPBIN, 0, Map.of(
                "impersonated-identity", HTTPBIN.uri(), "pod-name", "httpbin-2", "pod-namespace", "default")));
        assertTrue(why.contains("pod default/httpbin-2 is scheduled on node-b, not node-a"), why);
    }

    @Test
    void unlistedTokensAreUnauthenticated() {
        String why = refused(Status.Code.UNAUTHENTICATED, () -> ca.sign("guessed", SLEEP, 0, Map.of()));
        assertTrue(why.contains("not listed in"), why);
    }
}
