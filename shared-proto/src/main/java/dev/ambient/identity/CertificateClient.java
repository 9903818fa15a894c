package dev.ambient.identity;

import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.proto.ca.CertificateRequest;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
import io.grpc.ManagedChannel;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * A CSR client of svc-ca, shared by the ztunnel, the waypoint and svc-xds: a new P-256 key and CSR
 * per request, over the control plane's TLS channel (the CA verified against the mounted mesh root
 * and its Service name), with the caller's service-account token on every call. The trust bundle
 * is fetched with each issuance over that same verified channel, so a rotated root reaches the
 * data plane with the next renewal; when the CA lists none, the mounted roots are used, never the
 * chain just received. The calls block (gRPC blocking stub, key generation), so they run on the
 * client's own small bounded pool, never on event loops.
 */
public final class CertificateClient implements AutoCloseable {

    /** A certificate with its chain, and the roots peers must chain to. */
    public record Issued(WorkloadCertificate certificate, List<X509Certificate> roots) {
    }

    private final ControlPlaneEndpoint endpoint;
    private final Duration lifetime;
    private final ExecutorService executor;
    private final ManagedChannel channel;

    public CertificateClient(ControlPlaneEndpoint endpoint, Duration lifetime, String threadName) {
        this.endpoint = endpoint;
        this.lifetime = lifetime;
        this.executor = Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, threadName);
            t.setDaemon(true);
            return t;
        });
        this.channel = endpoint.open(b -> b);
    }

    /** The CA, as logs name it. */
    public String target() {
        return endpoint.toString();
    }

    /**
     * Asks for a certificate of {@code identity}.
     *
     * @param metadata request metadata, e.g. impersonation of a pod on the caller's node
     */
    public CompletableFuture<Issued> issue(SpiffeId identity, Map<String, String> metadata) {
        return CompletableFuture.supplyAsync(() -> fetch(identity, metadata), executor);
    }

    /** Asks for a serving certificate for {@code dnsNames} (svc-xds's Service names); blocking. */
    public ServingCertificate issueServing(List<String> dnsNames) {
        KeyPair keys = CertificateRequests.newKeyPair();
        var response = stub().createCertificate(CertificateRequest.newBuilder()
                .setCsr(CertificateRequests.createServerPem(keys, dnsNames))
                .setValiditySeconds(lifetime.toSeconds())
                .build());
        List<X509Certificate> chain = decode(response.getCertChainList());
        chainsToMountedRoot(chain);
        return new ServingCertificate(keys.getPrivate(), chain);
    }

    private CertificateServiceGrpc.CertificateServiceBlockingStub stub() {
        return CertificateServiceGrpc.newBlockingStub(channel).withCallCredentials(endpoint.token())
                .withDeadlineAfter(10, TimeUnit.SECONDS);
    }

    private Issued fetch(SpiffeId identity, Map<String, String> metadata) {
        var stub = stub();
        KeyPair keys = CertificateRequests.newKeyPair();
        CertificateRequest request = CertificateRequest.newBuilder()
                .setCsr(CertificateRequests.createPem(keys, identity))
                .setValiditySeconds(lifetime.toSeconds())
                .putAllMetadata(metadata)
                .build();
        List<X509Certificate> chain = decode(stub.createCertificate(request).getCertChainList());
        List<X509Certificate> trusted = decode(stub.getTrustBundle(TrustBundleRequest.getDefaultInstance()).getRootsList());
        if (trusted.isEmpty()) {
            trusted = endpoint.roots().roots();
        }
        if (!chain.isEmpty() && !trusted.contains(chain.getLast())) {
            throw new IllegalStateException("the CA sent a chain ending in " + chain.getLast().getSubjectX500Principal()
                    + ", a root it does not list in its trust bundle");
        }
        return new Issued(new WorkloadCertificate(identity, keys.getPrivate(), chain), List.copyOf(trusted));
    }

    private void chainsToMountedRoot(List<X509Certificate> chain) {
        if (chain.isEmpty() || !endpoint.roots().roots().contains(chain.getLast())) {
            throw new IllegalStateException("the CA sent a serving certificate that does not end in a mounted mesh root");
        }
    }

    private static List<X509Certificate> decode(List<String> pems) {
        List<X509Certificate> certificates = new ArrayList<>();
        pems.forEach(pem -> certificates.addAll(Pem.decodeCertificates(pem)));
        return certificates;
    }

    @Override
    public void close() {
        executor.shutdownNow();
        channel.shutdownNow();
    }
}
