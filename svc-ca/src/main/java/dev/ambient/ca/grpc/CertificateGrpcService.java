package dev.ambient.ca.grpc;

import dev.ambient.auth.CallerCredentials;
import dev.ambient.auth.CredentialsInterceptor;
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
 * The certificate service of {@code ca.proto}, served over TLS only (see {@code CaServingTls}).
 * Every call is authenticated, the trust bundle too. Token checks and pod look-ups block on the
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
        CallerCredentials credentials = CredentialsInterceptor.current();
        return Uni.createFrom()
                .item(() -> issuer.issue(credentials, request.getCsr(), request.getValiditySeconds(),
                        request.getMetadataMap()))
                .runSubscriptionOn(Infrastructure.getDefaultWorkerPool())
                .map(chain -> CertificateResponse.newBuilder().addAllCertChain(chain).build())
                .onFailure().transform(CertificateGrpcService::toStatus);
    }

    @Override
    public Uni<TrustBundleResponse> getTrustBundle(TrustBundleRequest request) {
        CallerCredentials credentials = CredentialsInterceptor.current();
        return Uni.createFrom().item(() -> issuer.authenticate(credentials))
                .runSubscriptionOn(Infrastructure.getDefaultWorkerPool())
                .map(caller -> rootOfTrust.current().map(root -> TrustBundleResponse.newBuilder()
                        .addAllRoots(root.trustedRoots().stream().map(Pem::encodeCertificate).toList()).build())
                        .orElseThrow(() -> Status.UNAVAILABLE
                                .withDescription("the CA has no root of trust loaded yet (" + rootOfTrust.problem() + ")")
                                .asRuntimeException()))
                .onFailure().invoke(failure -> {
                    if (failure instanceof Refusal refusal) {
                        LOG.infof("refused the trust bundle to a caller from %s [%s]: %s", credentials.address(),
                                refusal.reason().tag(), refusal.getMessage());
                    }
                })
                .onFailure().transform(CertificateGrpcService::toStatus);
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
                case KUBERNETES_UNAVAILABLE, BUSY, NOT_READY -> Status.UNAVAILABLE;
                case SIGNING_FAILED -> Status.INTERNAL;
            };
            return status.withDescription(refusal.getMessage()).asRuntimeException();
        }
        LOG.error("certificate request failed unexpectedly", failure);
        return Status.INTERNAL.withDescription("internal error in the CA: " + failure).asRuntimeException();
    }
}
