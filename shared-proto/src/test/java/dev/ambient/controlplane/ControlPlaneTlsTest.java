package dev.ambient.controlplane;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.Pem;
import dev.ambient.identity.ServingCertificate;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
import dev.ambient.proto.ca.TrustBundleResponse;
import io.grpc.ForwardingServerCall;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane's TLS, with a real grpc-netty server and the shared client channel over
 * loopback: the client verifies the server by the mounted root and the Service name and sends its
 * token only over TLS; the server's certificate rotates under open connections.
 */
class ControlPlaneTlsTest {

    static final String CA_NAME = "ca.istio-system.svc";

    @TempDir
    Path dir;

    final CertificateAuthority mesh = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
    final ServingKeyManager keys = new ServingKeyManager();
    Server server;
    ManagedChannel channel;

    /** Per call served: the authorization metadata, the TLS protocol and the serial of the certificate served. */
    record Served(String authorization, String protocol, String serial) {}

    final List<Served> served = new CopyOnWriteArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        if (server != null) {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    int start(SslContext tls) throws Exception {
        ServerInterceptor record = new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                    ServerCallHandler<Q, R> next) {
                SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
                served.add(new Served(headers.get(ServiceAccountToken.AUTHORIZATION),
                        session == null ? "plaintext" : session.getProtocol(),
                        session == null ? "-" : ((X509Certificate) session.getLocalCertificates()[0]).getSerialNumber().toString(16)));
                return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {}, headers);
            }
        };
        var service = new CertificateServiceGrpc.CertificateServiceImplBase() {
            @Override
            public void getTrustBundle(TrustBundleRequest request, StreamObserver<TrustBundleResponse> out) {
                out.onNext(TrustBundleResponse.newBuilder().addRoots(Pem.encodeCertificate(mesh.root())).build());
                out.onCompleted();
            }
        };
        NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(service, record));
        if (tls != null) {
            builder.sslContext(tls);
        }
        server = builder.build().start();
        return server.getPort();
    }

    Path rootFile(X509Certificate... roots) throws Exception {
        return Files.writeString(dir.resolve("root-cert.pem"), Pem.encodeCertificates(List.of(roots)));
    }

    Path tokenFile() throws Exception {
        return Files.writeString(dir.resolve("token"), "the-token\n");
    }

    ControlPlaneEndpoint endpoint(int port, String serverName) throws Exception {
        return ControlPlaneEndpoint.of("127.0.0.1:" + port, Optional.of(serverName),
                MeshRootFile.load(dir.resolve("root-cert.pem")), tokenFile());
    }

    TrustBundleResponse call(ControlPlaneEndpoint endpoint) {
        if (channel == null) {
            channel = endpoint.open(b -> b);
        }
        return call(channel, endpoint);
    }

    static TrustBundleResponse call(ManagedChannel channel, ControlPlaneEndpoint endpoint) {
        return CertificateServiceGrpc.newBlockingStub(channel).withCallCredentials(endpoint.token())
                .withDeadlineAfter(10, TimeUnit.SECONDS).getTrustBundle(TrustBundleRequest.getDefaultInstance());
    }

    @Test
    void theClientVerifiesTheServerByTheMountedRootAndItsServiceNameAndSendsItsToken() throws Exception {
        keys.install(mesh.issueServer(List.of(CA_NAME, "ca.istio-system.svc.cluster.local"), Duration.ofHours(1)));
        int port = start(ControlPlaneTls.serverContext(keys));
        rootFile(mesh.root());

        assertEquals(1, call(endpoint(port, CA_NAME)).getRootsCount());
        assertEquals(new Served("Bearer the-token", "TLSv1.3", keys.current().orElseThrow().serial()), served.getFirst());
    }

    @Test
    void aServerOfAnotherNameOrRootOrAWorkloadCertificateIsRefusedAndGetsNoToken() throws Exception {
        keys.install(mesh.issueServer(List.of(CA_NAME), Duration.ofHours(1)));
        int port = start(ControlPlaneTls.serverContext(keys));
        rootFile(mesh.root());

        ControlPlaneEndpoint asXds = endpoint(port, "xds.istio-system.svc");
        String wrongName = refused(() -> call(asXds));
        assertTrue(wrongName.contains("not xds.istio-system.svc"), wrongName);
        stop();
        channel = null;

        CertificateAuthority other = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
        keys.install(other.issueServer(List.of(CA_NAME), Duration.ofHours(1)));
        int otherPort = start(ControlPlaneTls.serverContext(keys));
        ControlPlaneEndpoint toOther = endpoint(otherPort, CA_NAME);
        String wrongRoot = refused(() -> call(toOther));
        assertTrue(wrongRoot.contains("does not chain to a mesh root"), wrongRoot);
        stop();
        channel = null;

        // a workload of the mesh (a valid SPIFFE certificate from the same root) posing as the CA
        WorkloadCertificate workload = mesh.issue(new SpiffeId("cluster.local", "default", "sleep"), Duration.ofHours(1));
        int podPort = start(GrpcSslContexts.configure(SslContextBuilder.forServer(workload.privateKey(),
                workload.chain().toArray(X509Certificate[]::new))).build());
        ControlPlaneEndpoint toPod = endpoint(podPort, CA_NAME);
        String pod = refused(() -> call(toPod));
        assertTrue(pod.contains("no DNS name"), pod);

        assertEquals(List.of(), served, "no call, no token reached any of them");
    }

    @Test
    void theTokenIsNeverSentInClear() throws Exception {
        int port = start(null);
        rootFile(mesh.root());
        ControlPlaneEndpoint endpoint = endpoint(port, CA_NAME);

        // our channel cannot talk to a plaintext server at all
        refused(() -> call(endpoint));
        // and the token refuses to ride on a plaintext channel someone else built
        ManagedChannel plain = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
        try {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> call(plain, endpoint));
            assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("without TLS"), e.getStatus().toString());
        } finally {
            plain.shutdownNow();
        }
        assertEquals(List.of(), served);
    }

    @Test
    void rotationKeepsOpenConnectionsAndNewHandshakesGetTheNewCertificate() throws Exception {
        keys.install(mesh.issueServer(List.of(CA_NAME), Duration.ofHours(1)));
        int port = start(ControlPlaneTls.serverContext(keys));
        rootFile(mesh.root());
        ControlPlaneEndpoint endpoint = endpoint(port, CA_NAME);
        call(endpoint);
        String first = served.getLast().serial();

        ServingCertificate next = mesh.issueServer(List.of(CA_NAME), Duration.ofHours(1));
        keys.install(next);
        call(endpoint);
        assertEquals(first, served.getLast().serial(), "the open connection goes on with its certificate");

        ManagedChannel fresh = endpoint.open(b -> b);
        try {
            call(fresh, endpoint);
            assertEquals(next.serial(), served.getLast().serial(), "a new handshake gets the new certificate");
            assertNotEquals(first, next.serial());
        } finally {
            fresh.shutdownNow();
        }
    }

    @Test
    void aRootAddedToTheMountedFileIsTrustedWithoutARestart() throws Exception {
        CertificateAuthority next = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
        keys.install(next.issueServer(List.of(CA_NAME), Duration.ofHours(1)));
        int port = start(ControlPlaneTls.serverContext(keys));
        rootFile(mesh.root());
        ControlPlaneEndpoint endpoint = endpoint(port, CA_NAME);
        refused(() -> call(endpoint));
        channel.shutdownNow();
        channel = null;

        Thread.sleep(20); // a new modification time even on coarse clocks (the size changes anyway)
        rootFile(mesh.root(), next.root()); // the ConfigMap during a root rotation
        assertEquals(1, call(endpoint).getRootsCount());
    }

    @Test
    void aMissingOrEmptyRootFileIsAClearError() throws Exception {
        Path missing = dir.resolve("nowhere/root-cert.pem");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> MeshRootFile.load(missing));
        assertTrue(e.getMessage().contains(missing.toString()) && e.getMessage().contains("istio-ca-root-cert"),
                e.getMessage());
        Path empty = Files.writeString(dir.resolve("empty.pem"), "");
        e = assertThrows(IllegalStateException.class, () -> MeshRootFile.load(empty));
        assertTrue(e.getMessage().contains("no CERTIFICATE found"), e.getMessage());
    }

    @Test
    void onlyTls13IsServed() throws Exception {
        keys.install(mesh.issueServer(List.of(CA_NAME), Duration.ofHours(1)));
        int port = start(ControlPlaneTls.serverContext(keys));
        assertThrows(javax.net.ssl.SSLException.class, () -> ControlPlaneFixture.handshake("127.0.0.1", port, "TLSv1.2"));
        assertEquals(1, ControlPlaneFixture.handshake("127.0.0.1", port, "TLSv1.3").length);
    }

    @Test
    void rotationRetriesUntilItGetsACertificateAndRenewsAtHalfItsLife() throws Exception {
        java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
        try (var rotation = new ServingCertificateRotation("test server", () -> {
            if (asked.incrementAndGet() == 1) {
                throw new IllegalStateException("the CA is not ready");
            }
            // backdated a minute: 62 s of life, so 1 s left, renewed after about half a second
            return mesh.issueServer(List.of(CA_NAME), Duration.ofSeconds(1));
        }, keys).start()) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (asked.get() < 4 && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertTrue(asked.get() >= 4, "retried after the failure, then renewed: asked " + asked.get());
            assertTrue(keys.current().isPresent());
        }
    }

    static String refused(Runnable call) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::run);
        assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.getStatus().toString());
        StringBuilder causes = new StringBuilder(String.valueOf(e.getStatus().getDescription()));
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            causes.append(" / ").append(t.getMessage());
        }
        return causes.toString();
    }
}
