package dev.ambient.ztunnel.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.ambient.controlplane.ControlPlaneFixture;
import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.ca.CertificateRequest;
import dev.ambient.proto.ca.CertificateResponse;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
import dev.ambient.proto.ca.TrustBundleResponse;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CA refuses a ztunnel a pod's identity unless the request names a pod of that identity on
 * the ztunnel's node. An in-pod Add comes before the control plane lists the pod (it publishes a
 * pod once it runs with an IP), so the pods being served are asked too.
 */
class RemoteCertificateSourceTest {

    static final int PORT = 25911;

    @TempDir
    Path dir;

    @Test
    void aPodServedInPodButNotYetListedIsNamedInTheRequest() throws Exception {
        ControlPlaneFixture tls = new ControlPlaneFixture(dir, "ztunnel-token");
        CertificateAuthority ca = tls.mesh;
        var seen = new CopyOnWriteArrayList<Map<String, String>>();
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", PORT))
                .sslContext(tls.serverTls("ca.istio-system.svc"))
                .addService(new CertificateServiceGrpc.CertificateServiceImplBase() {
                    @Override
                    public void createCertificate(CertificateRequest request,
                            StreamObserver<CertificateResponse> out) {
                        seen.add(request.getMetadataMap());
                        var chain = ca.sign(CertificateRequests.parsePem(request.getCsr()), Duration.ofHours(1));
                        var r = CertificateResponse.newBuilder();
                        chain.forEach(c -> r.addCertChain(Pem.encodeCertificate(c)));
                        out.onNext(r.build());
                        out.onCompleted();
                    }

                    @Override
                    public void getTrustBundle(TrustBundleRequest request, StreamObserver<TrustBundleResponse> out) {
                        out.onNext(TrustBundleResponse.newBuilder().addRoots(Pem.encodeCertificate(ca.root())).build());
                        out.onCompleted();
                    }
                }).build().start();
        SpiffeId cart = new SpiffeId("cluster.local", "shop", "cart");
        try (var source = new RemoteCertificateSource(tls.endpoint("127.0.0.1:" + PORT, "ca.istio-system.svc"),
                Duration.ofHours(1), new WorkloadStore(), "node-a", "cluster.local")) {
            source.issue(cart).toCompletableFuture().get(20, TimeUnit.SECONDS);
            assertFalse(seen.getLast().containsKey("pod-name"), "no pod known: asked as itself");

            source.alsoServing(id -> id.equals(cart)
                    ? Optional.of(new RemoteCertificateSource.PodName("shop", "cart-7d9f"))
                    : Optional.empty());
            var issued = source.issue(cart).toCompletableFuture().get(20, TimeUnit.SECONDS);
            assertEquals(Map.of("impersonated-identity", cart.uri(), "pod-name", "cart-7d9f",
                    "pod-namespace", "shop"), seen.getLast());
            assertEquals(cart, issued.identity());
        } finally {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }
}
