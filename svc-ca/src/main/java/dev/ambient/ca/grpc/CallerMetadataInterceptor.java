package dev.ambient.ca.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import jakarta.enterprise.context.ApplicationScoped;

/** Hands the caller's {@code authorization} metadata and address to the service through the gRPC context. */
@ApplicationScoped
public class CallerMetadataInterceptor implements ServerInterceptor {

    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    static final Context.Key<String> AUTHORIZATION_HEADER = Context.key("ca-authorization-header");
    static final Context.Key<String> PEER = Context.key("ca-peer");

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        Object remote = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        Context context = Context.current()
                .withValue(AUTHORIZATION_HEADER, headers.get(AUTHORIZATION))
                .withValue(PEER, remote == null ? "unknown peer" : remote.toString());
        return Contexts.interceptCall(context, call, headers, next);
    }
}
