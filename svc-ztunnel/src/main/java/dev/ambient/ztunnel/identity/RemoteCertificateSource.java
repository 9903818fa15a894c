package dev.ambient.ztunnel.identity;

import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import dev.ambient.proto.ca.CertificateRequest;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Certificates from svc-ca: a new P-256 key and CSR per request, sent with this ztunnel's
 * service-account token, asking on behalf of a pod on this node (impersonation). The token file is
 * re-read on every call (projected tokens rotate). The trust bundle is fetched with each issuance,
 * so a rotated root reaches the data plane with the next renewal.
 */
public final class RemoteCertificateSource implements CertificateSource, AutoCloseable {

    private static final Logger LOG = Logger.getLogger(RemoteCertificateSource.class);
    private static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);

    private final String target;
    private final Path tokenFile;
    private final Duration lifetime;
    private final WorkloadStore store;
    private final String nodeName;
    private final String trustDomain;
    private final java.util.concurrent.ExecutorService executor;
    private final ManagedChannel channel;
    private volatile List<X509Certificate> roots = List.of();

    public RemoteCertificateSource(String target, Path tokenFile, Duration lifetime, WorkloadStore store,
            String nodeName, String trustDomain) {
        this.target = target;
        this.tokenFile = tokenFile;
        this.lifetime = lifetime;
        this.store = store;
        this.nodeName = nodeName;
        this.trustDomain = trustDomain;
        // The CSR calls block (gRPC blocking stub, key generation): their own small pool, bounded,
        // never the data plane's loops nor the JVM's shared common pool.
        this.executor = java.util.concurrent.Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "ztunnel-ca-client");
            t.setDaemon(true);
            return t;
        });
        this.channel = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
    }

    @Override
    public CompletionStage<WorkloadCertificate> issue(SpiffeId identity) {
        return CompletableFuture.supplyAsync(() -> fetch(identity), executor);
    }

    private WorkloadCertificate fetch(SpiffeId identity) {
        Metadata headers = new Metadata();
        headers.put(AUTHORIZATION, "Bearer " + token());
        var stub = CertificateServiceGrpc.newBlockingStub(channel)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
                .withDeadlineAfter(10, TimeUnit.SECONDS);
        KeyPair keys = CertificateRequests.newKeyPair();
        CertificateRequest.Builder request = CertificateRequest.newBuilder()
                .setCsr(CertificateRequests.createPem(keys, identity))
                .setValiditySeconds(lifetime.toSeconds());
        // Without a pod of that identity on this node, the CA would refuse: ask as ourselves.
        localPod(identity).ifPresent(pod -> request.putMetadata("impersonated-identity", identity.uri())
                .putMetadata("pod-name", pod.getName())
                .putMetadata("pod-namespace", pod.getNamespace()));
        var response = stub.createCertificate(request.build());
        List<X509Certificate> chain = new ArrayList<>();
        for (String pem : response.getCertChainList()) {
            chain.addAll(Pem.decodeCertificates(pem));
        }
        var bundle = stub.getTrustBundle(TrustBundleRequest.getDefaultInstance());
        List<X509Certificate> trusted = new ArrayList<>();
        bundle.getRootsList().forEach(pem -> trusted.addAll(Pem.decodeCertificates(pem)));
        if (!trusted.isEmpty()) {
            roots = List.copyOf(trusted);
        } else if (!chain.isEmpty()) {
            roots = List.of(chain.getLast());
        }
        return new WorkloadCertificate(identity, keys.getPrivate(), chain);
    }

    /** A pod on this node running as the identity: the CA checks it is scheduled here. */
    private Optional<Workload> localPod(SpiffeId id) {
        return store.current().workloadsOnNode(nodeName).stream()
                .filter(w -> WorkloadIdentity.of(w, trustDomain).equals(id))
                .findFirst();
    }

    private String token() {
        try {
            return Files.readString(tokenFile).trim();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read service-account token " + tokenFile + ": " + e.getMessage());
        }
    }

    @Override
    public List<X509Certificate> trustRoots() {
        return roots;
    }

    @Override
    public String describe() {
        return "ca at " + target;
    }

    @Override
    public void close() {
        executor.shutdownNow();
        channel.shutdownNow();
        LOG.debugf("closed channel to %s", target);
    }
}
