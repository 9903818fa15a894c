package dev.ambient.xds.security;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.controlplane.ControlPlaneTls;
import dev.ambient.controlplane.ServingKeyManager;
import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.Pem;
import dev.ambient.identity.ServingCertificate;
import dev.ambient.proto.ca.CertificateRequest;
import dev.ambient.proto.ca.CertificateResponse;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * svc-xds gets its serving certificate from a CA over the control plane's TLS: it verifies the CA
 * against the mounted root and the CA's name, authenticates with its own token, asks for its
 * Service names, serves what it got and is ready only then. The CA here is a stand-in speaking
 * svc-ca's protocol with the shared signing code (svc-ca itself is tested in its module and
 * with svc-xds in the mesh in a box).
 */
@QuarkusTest
@TestProfile(ServingCertificateFromCaTest.FromCa.class)
class ServingCertificateFromCaTest {

    static final Path DIR = Path.of("target/xds-test-ca");
    static final int CA_PORT = 57012;

    public static class FromCa implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("xds.tls.source", "ca", "xds.tls.ca-address", "127.0.0.1:" + CA_PORT,
                    "xds.tls.ca-server-name", "ca.istio-system.svc", "xds.tls.root-cert-file", DIR.resolve("root-cert.pem").toString(),
                    "xds.tls.token-file", DIR.resolve("xds-token").toString(),
                    "xds.source", "directory", "xds.directory", "target/discovery-test-empty-mesh", "xds.waypoint.enabled", "false");
        }

        @Override
        public List<TestResourceEntry> testResources() {
            return List.of(new TestResourceEntry(StandInCa.class));
        }
    }

    /** svc-ca's protocol over TLS with the shared signing code; remembers who asked for what. */
    public static class StandInCa implements QuarkusTestResourceLifecycleManager {
        static final List<String> AUTHORIZATIONS = new CopyOnWriteArrayList<>();
        static final List<List<String>> NAMES_ASKED = new CopyOnWriteArrayList<>();
        static CertificateAuthority mesh;
        private Server server;

        @Override
        public Map<String, String> start() {
            try {
                Files.createDirectories(DIR);
                mesh = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
                Files.writeString(DIR.resolve("root-cert.pem"), Pem.encodeCertificate(mesh.root()));
                Files.writeString(DIR.resolve("xds-token"), "the-xds-token\n");
                ServingKeyManager keys = new ServingKeyManager();
                keys.install(mesh.issueServer(List.of("ca.istio-system.svc"), Duration.ofHours(1)));
                ServerInterceptor record = new ServerInterceptor() {
                    @Override
                    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                            ServerCallHandler<Q, R> next) {
                        assertEquals("TLSv1.3", call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION).getProtocol());
                        AUTHORIZATIONS.add(headers.get(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER)));
                        return next.startCall(call, headers);
                    }
                };
                var service = new CertificateServiceGrpc.CertificateServiceImplBase() {
                    @Override
                    public void createCertificate(CertificateRequest request, StreamObserver<CertificateResponse> out) {
                        var csr = CertificateRequests.parsePem(request.getCsr());
                        NAMES_ASKED.add(((dev.ambient.identity.CertificateSubject.ServerNames)
                                CertificateRequests.verifiedSubject(csr)).dnsNames());
                        var r = CertificateResponse.newBuilder();
                        mesh.signServer(csr, Duration.ofSeconds(request.getValiditySeconds()))
                                .forEach(c -> r.addCertChain(Pem.encodeCertificate(c)));
                        out.onNext(r.build());
                        out.onCompleted();
                    }
                };
                server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", CA_PORT))
                        .sslContext(ControlPlaneTls.serverContext(keys))
                        .addService(ServerInterceptors.intercept(service, record)).build().start();
                return Map.of();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public void stop() {
            if (server != null) {
                server.shutdownNow();
            }
        }
    }

    @Inject
    XdsServingTls servingTls;

    @Test
    void xdsServesACertificateFromTheCaForItsServiceNamesAskedWithItsToken() throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (given().get("/healthz/ready").statusCode() != 200 && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        given().get("/healthz/ready").then().statusCode(200);
        ServingCertificate served = servingTls.current().orElseThrow();
        assertEquals(List.of("xds.istio-system.svc", "xds.istio-system.svc.cluster.local"), served.dnsNames());
        X509Certificate root = Pem.decodeCertificates(Files.readString(DIR.resolve("root-cert.pem"))).getFirst();
        served.leaf().verify(root.getPublicKey());
        assertTrue(StandInCa.AUTHORIZATIONS.contains("Bearer the-xds-token"), StandInCa.AUTHORIZATIONS.toString());
        assertEquals(List.of("xds.istio-system.svc", "xds.istio-system.svc.cluster.local"), StandInCa.NAMES_ASKED.getFirst());

        // and a client that trusts the mounted root and checks the name gets through
        var channel = io.grpc.netty.NettyChannelBuilder.forAddress("127.0.0.1", 57010)
                .sslContext(ControlPlaneTls.clientContext(new dev.ambient.controlplane.ServerNameTrustManager(
                        dev.ambient.controlplane.MeshRootFile.load(DIR.resolve("root-cert.pem")), "xds.istio-system.svc")))
                .overrideAuthority("xds.istio-system.svc").build();
        try {
            var state = channel.getState(true);
            long until = System.nanoTime() + 10_000_000_000L;
            while (state != io.grpc.ConnectivityState.READY && System.nanoTime() < until) {
                Thread.sleep(50);
                state = channel.getState(true);
            }
            assertEquals(io.grpc.ConnectivityState.READY, state, "TLS handshake with the served certificate");
        } finally {
            channel.shutdownNow();
        }
    }
}
