package dev.ambient.identity;

import dev.ambient.proto.ca.CertificateRequest;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
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
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * A CSR client of svc-ca, shared by the ztunnel and the waypoint: a new P-256 key and CSR per
 * request, sent with the caller's service-account token (re-read on every call: projected tokens
 * rotate). The trust bundle is fetched with each issuance, so a rotated root reaches the data
 * plane with the next renewal. The calls block (gRPC blocking stub, key generation), so they run
 * on the client's own small bounded pool, never on event loops.
 */
public final class CertificateClient implements AutoCloseable {

    private static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);

    /** A certificate with its chain, and the roots peers must chain to (empty if the CA sent none). */
    public record Issued(WorkloadCertificate certificate, List<X509Certificate> roots) {
    }

    private final String target;
    private final Path tokenFile;
    private final Duration lifetime;
    private final ExecutorService executor;
    private final ManagedChannel channel;

    public CertificateClient(String target, Path tokenFile, Duration lifetime, String threadName) {
        this.target = target;
        this.tokenFile = tokenFile;
        this.lifetime = lifetime;
        this.executor = Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, threadName);
            t.setDaemon(true);
            return t;
        });
        this.channel = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
    }

    public String target() {
        return target;
    }

    /**
     * Asks for a certificate of {@code identity}.
     *
     * @param metadata request metadata, e.g. impersonation of a pod on the caller's node
     */
    public CompletableFuture<Issued> issue(SpiffeId identity, Map<String, String> metadata) {
        return CompletableFuture.supplyAsync(() -> fetch(identity, metadata), executor);
    }

    private Issued fetch(SpiffeId identity, Map<String, String> metadata) {
        Metadata headers = new Metadata();
        headers.put(AUTHORIZATION, "Bearer " + token());
        var stub = CertificateServiceGrpc.newBlockingStub(channel)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
                .withDeadlineAfter(10, TimeUnit.SECONDS);
        KeyPair keys = CertificateRequests.newKeyPair();
        CertificateRequest request = CertificateRequest.newBuilder()
                .setCsr(CertificateRequests.createPem(keys, identity))
                .setValiditySeconds(lifetime.toSeconds())
                .putAllMetadata(metadata)
                .build();
        var response = stub.createCertificate(request);
        List<X509Certificate> chain = new ArrayList<>();
        for (String pem : response.getCertChainList()) {
            chain.addAll(Pem.decodeCertificates(pem));
        }
        var bundle = stub.getTrustBundle(TrustBundleRequest.getDefaultInstance());
        List<X509Certificate> trusted = new ArrayList<>();
        bundle.getRootsList().forEach(pem -> trusted.addAll(Pem.decodeCertificates(pem)));
        if (trusted.isEmpty() && !chain.isEmpty()) {
            trusted.add(chain.getLast());
        }
        return new Issued(new WorkloadCertificate(identity, keys.getPrivate(), chain), List.copyOf(trusted));
    }

    private String token() {
        try {
            return Files.readString(tokenFile).trim();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read service-account token " + tokenFile + ": " + e.getMessage());
        }
    }

    @Override
    public void close() {
        executor.shutdownNow();
        channel.shutdownNow();
    }
}
