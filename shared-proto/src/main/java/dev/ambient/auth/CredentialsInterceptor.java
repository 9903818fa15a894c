package dev.ambient.auth;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.net.InetSocketAddress;
import java.net.SocketAddress;

/**
 * Hands a call's {@link CallerCredentials} to the service through the gRPC context. It does not
 * authenticate: a TokenReview blocks, and interceptors run on the event loop; the service
 * authenticates on a worker thread. Register a bean subclass with {@code @RegisterInterceptor}.
 */
public class CredentialsInterceptor implements ServerInterceptor {

    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private static final Context.Key<CallerCredentials> CREDENTIALS = Context.key("caller-credentials");

    /** The credentials of the call being served on this thread (read it before leaving the gRPC thread). */
    public static CallerCredentials current() {
        CallerCredentials credentials = CREDENTIALS.get();
        return credentials != null ? credentials : new CallerCredentials(null, "unknown", "unknown peer");
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        SocketAddress remote = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        String host = remote instanceof InetSocketAddress inet && inet.getAddress() != null
                ? inet.getAddress().getHostAddress() : String.valueOf(remote);
        String address = remote instanceof InetSocketAddress inet && inet.getAddress() != null
                ? host + ":" + inet.getPort() : String.valueOf(remote);
        Context context = Context.current().withValue(CREDENTIALS,
                new CallerCredentials(headers.get(AUTHORIZATION), host, address));
        return Contexts.interceptCall(context, call, headers, next);
    }
}
