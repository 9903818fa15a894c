package dev.ambient.ca;

import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.ca.CertificateRequest;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.controlplane.ControlPlaneTls;
import dev.ambient.controlplane.MeshRootFile;
import dev.ambient.controlplane.ServerNameTrustManager;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.util.List;
import java.util.Set;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.junit.jupiter.api.Assertions;

/**
 * A real gRPC client of the CA on its test port, as a ztunnel would use it: TLS 1.3, the CA
 * checked against the mesh root (read from a file when first used: the CA may load its root after
 * the test starts) and its Service name. The token is sent as raw metadata, so that tests can also
 * send none or a malformed one.
 */
public final class CaClient implements AutoCloseable {

    public static final int GRPC_TEST_PORT = 56012;
    public static final String SERVER_NAME = "ca.istio-system.svc";
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    private final Supplier<Path> rootFile;
    private ManagedChannel channel;

    /** @param rootFile where the mesh root is, once the CA has one */
    public CaClient(Supplier<Path> rootFile) {
        this.rootFile = rootFile;
    }

    /** The standalone test profile's root (application.properties: target/test-ca). */
    public static CaClient standalone() {
        return new CaClient(() -> Path.of("target/test-ca/root-cert.pem"));
    }

    /** A TLS channel to the CA that trusts the roots in {@code rootFile}. */
    public static ManagedChannel channel(Path rootFile, String serverName) {
        return tls(rootFile, serverName).build();
    }

    static NettyChannelBuilder tls(Path rootFile, String serverName) {
        return NettyChannelBuilder.forAddress("127.0.0.1", GRPC_TEST_PORT)
                .sslContext(ControlPlaneTls.clientContext(new ServerNameTrustManager(MeshRootFile.load(rootFile), serverName)))
                .overrideAuthority(serverName);
    }

    /** A client whose connections come from {@code localIp} (another "pod" than the other clients). */
    public static CaClient from(String localIp, Supplier<Path> rootFile) {
        CaClient client = new CaClient(rootFile);
        client.channel = tls(rootFile.get(), SERVER_NAME).localSocketPicker(new NettyChannelBuilder.LocalSocketPicker() {
            @Override
            public java.net.SocketAddress createSocketAddress(java.net.SocketAddress remote, io.grpc.Attributes attrs) {
                return new java.net.InetSocketAddress(localIp, 0);
            }
        }).build();
        return client;
    }

    private synchronized ManagedChannel channel() {
        if (channel == null) {
            channel = channel(rootFile.get(), SERVER_NAME);
        }
        return channel;
    }

    /** Non-blocking stub, for many calls at once. */
    public CertificateServiceGrpc.CertificateServiceFutureStub futureStub(String token) {
        Metadata headers = new Metadata();
        headers.put(AUTHORIZATION, "Bearer " + token);
        return CertificateServiceGrpc.newFutureStub(channel()).withDeadlineAfter(60, TimeUnit.SECONDS)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }

    public CertificateServiceGrpc.CertificateServiceBlockingStub stub(String token) {
        var stub = CertificateServiceGrpc.newBlockingStub(channel()).withDeadlineAfter(20, TimeUnit.SECONDS);
        if (token == null) {
            return stub;
        }
        Metadata headers = new Metadata();
        headers.put(AUTHORIZATION, "Bearer " + token);
        return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }

    /** Sends a fresh CSR for {@code id}; returns the chain, leaf first. */
    public List<X509Certificate> sign(String token, SpiffeId id, long validitySeconds, Map<String, String> metadata) {
        return send(token, CertificateRequests.createPem(CertificateRequests.newKeyPair(), id), validitySeconds, metadata);
    }

    public List<X509Certificate> send(String token, String csrPem, long validitySeconds, Map<String, String> metadata) {
        var response = stub(token).createCertificate(CertificateRequest.newBuilder()
                .setCsr(csrPem).setValiditySeconds(validitySeconds).putAllMetadata(metadata).build());
        return response.getCertChainList().stream().flatMap(pem -> Pem.decodeCertificates(pem).stream()).toList();
    }

    /** Asserts the call fails with {@code code}; returns the status description. */
    public static String refused(Status.Code code, Runnable call) {
        StatusRuntimeException e = Assertions.assertThrows(StatusRuntimeException.class, call::run);
        Assertions.assertEquals(code, e.getStatus().getCode(), () -> "status " + e.getStatus());
        return e.getStatus().getDescription();
    }

    /** Validates the chain (leaf first) with PKIX against {@code root} as the only trust anchor. */
    public static void verifies(List<X509Certificate> chain, X509Certificate root) throws Exception {
        var path = CertificateFactory.getInstance("X.509").generateCertPath(chain.subList(0, chain.size() - 1));
        PKIXParameters parameters = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
        parameters.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX").validate(path, parameters);
    }

    public static KeyPair keys() {
        return CertificateRequests.newKeyPair();
    }

    public static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                Assertions.fail("timed out waiting until " + what);
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                Assertions.fail("interrupted");
            }
        }
    }

    @Override
    public synchronized void close() throws InterruptedException {
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }
}
