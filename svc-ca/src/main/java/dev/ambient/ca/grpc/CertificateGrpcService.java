package dev.ambient.ca.grpc;

import dev.ambient.ca.Refusal;
import dev.ambient.ca.root.RootOfTrust;
import dev.ambient.ca.signing.CertificateIssuer;
import dev.ambient.identity.Pem;
import dev.ambient.proto.ca.CertificateRequest;
import dev.ambient.proto.ca.CertificateResponse;
import dev.ambient.proto.ca.CertificateService;
import dev.ambient.proto.ca.TrustBundleRequest;
import dev.ambient.proto.ca.TrustBundleResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcService;
import io.quarkus.grpc.RegisterInterceptor;
import io.smallrye.mutiny.Uni;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import org.jboss.logging.Logger;

/**
 * The certificate service of {@code ca.proto}. Token checks and pod look-ups block on the
 * Kubernetes API, so requests are handled on worker threads, never on the event loop.
 */
@GrpcService
@RegisterInterceptor(CallerMetadataInterceptor.class)
public class CertificateGrpcService implements CertificateService {

    private static final Logger LOG = Logger.getLogger(CertificateGrpcService.class);

    private final CertificateIssuer issuer;
    private final RootOfTrust rootOfTrust;

    public CertificateGrpcService(CertificateIssuer issuer, RootOfTrust rootOfTrust) {
        this.issuer = issuer;
        this.rootOfTrust = rootOfTrust;
    }

    @Override
    public Uni<CertificateResponse> createCertificate(CertificateRequest request) {
        // read the gRPC context here, on the calling thread: it does not follow us to the worker
        String authorization = CallerMetadataInterceptor.AUTHORIZATION_HEADER.get();
        String peer = CallerMetadataInterceptor.PEER.get();
        return Uni.createFrom()
                .item(() -> issuer.issue(authorization, request.getCsr(), request.getValiditySeconds(),
                        request.getMetadataMap(), peer))
                .runSubscriptionOn(Infrastructure.getDefaultWorkerPool())
                .map(chain -> CertificateResponse.newBuilder().addAllCertChain(chain).build())
                .onFailure().transform(CertificateGrpcService::toStatus);
    }

    @Override
    public Uni<TrustBundleResponse> getTrustBundle(TrustBundleRequest request) {
        return rootOfTrust.current()
                .map(root -> Uni.createFrom().item(TrustBundleResponse.newBuilder()
                        .addAllRoots(root.trustedRoots().stream().map(Pem::encodeCertificate).toList()).build()))
                .orElseGet(() -> Uni.createFrom().failure(Status.UNAVAILABLE
                        .withDescription("the CA has no root of trust loaded yet (" + rootOfTrust.problem() + ")")
                        .asRuntimeException()));
    }

    static StatusRuntimeException toStatus(Throwable failure) {
        if (failure instanceof StatusRuntimeException status) {
            return status;
        }
        if (failure instanceof Refusal refusal) {
            Status status = switch (refusal.reason()) {
                case UNAUTHENTICATED -> Status.UNAUTHENTICATED;
                case INVALID_REQUEST -> Status.INVALID_ARGUMENT;
                case PERMISSION_DENIED -> Status.PERMISSION_DENIED;
                case KUBERNETES_UNAVAILABLE, NOT_READY -> Status.UNAVAILABLE;
                case SIGNING_FAILED -> Status.INTERNAL;
            };
            return status.withDescription(refusal.getMessage()).asRuntimeException();
        }
        LOG.error("certificate request failed unexpectedly", failure);
        return Status.INTERNAL.withDescription("internal error in the CA: " + failure).asRuntimeException();
    }
}
