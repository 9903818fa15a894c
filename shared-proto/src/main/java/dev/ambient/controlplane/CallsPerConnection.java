package dev.ambient.controlplane;

import io.grpc.Attributes;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Calls open at once on one connection, enforced by the server whatever the client acknowledged.
 * grpc-java advertises {@code maxConcurrentCallsPerConnection} as SETTINGS_MAX_CONCURRENT_STREAMS,
 * but Netty applies it only once the client acknowledges those SETTINGS: a peer that opens its
 * streams first, or never acknowledges, had no bound (1,000 calls without a message stayed open on
 * one connection). Here a call beyond the bound is closed at once with RESOURCE_EXHAUSTED, before
 * any service code runs. The count lives in the transport's attributes ({@link GrpcConnectionAdmission}
 * puts it there); a transport without one (not TCP) is not counted.
 */
final class CallsPerConnection implements ServerInterceptor {

    /** Calls open on this transport now. */
    static final Attributes.Key<AtomicInteger> OPEN_CALLS = Attributes.Key.create("control-plane open calls");

    private final int maxCalls;

    CallsPerConnection(int maxCalls) {
        this.maxCalls = maxCalls;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
            ServerCallHandler<Q, R> next) {
        AtomicInteger open = call.getAttributes().get(OPEN_CALLS);
        if (open == null) {
            return next.startCall(call, headers);
        }
        if (open.incrementAndGet() > maxCalls) {
            open.decrementAndGet();
            call.close(Status.RESOURCE_EXHAUSTED.withDescription(maxCalls + " calls are open on this connection,"
                    + " its bound (control-plane.grpc.max-concurrent-calls-per-connection)"), new Metadata());
            return new ServerCall.Listener<>() { };
        }
        ServerCall.Listener<Q> listener;
        try {
            listener = next.startCall(call, headers);
        } catch (RuntimeException e) {
            open.decrementAndGet();
            throw e;
        }
        return new SimpleForwardingServerCallListener<>(listener) {
            private boolean ended; // grpc-java calls a listener serially

            @Override
            public void onComplete() {
                end();
                super.onComplete();
            }

            @Override
            public void onCancel() {
                end();
                super.onCancel();
            }

            private void end() {
                if (!ended) {
                    ended = true;
                    open.decrementAndGet();
                }
            }
        };
    }
}
