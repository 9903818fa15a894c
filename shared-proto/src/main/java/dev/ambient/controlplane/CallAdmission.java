package dev.ambient.controlplane;

import dev.ambient.hbone.BoundedCounts;
import io.grpc.Attributes;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * How many calls are open at once: on one connection, from one IP address, and in all. A call
 * costs heap from its HEADERS on, whether or not a message ever comes (4-14 KiB measured), and
 * a unary call whose client never sends its message stays open as long as the connection. A call
 * beyond a bound is closed at once with RESOURCE_EXHAUSTED, before any service code runs.
 *
 * <p>grpc-java advertises the bound per connection as SETTINGS_MAX_CONCURRENT_STREAMS, but Netty
 * applies it only once the client acknowledges those SETTINGS: a peer that opens its streams
 * first, or never acknowledges, had no bound (1,000 calls without a message stayed open on one
 * connection). The count per connection lives in the transport's attributes
 * ({@link GrpcConnectionAdmission} puts it there); a call on a transport without one (not TCP) is
 * not counted. Thread-safe.
 */
final class CallAdmission implements ServerInterceptor {

    /** Calls open on this transport now. */
    static final Attributes.Key<AtomicInteger> OPEN_CALLS = Attributes.Key.create("control-plane open calls");

    private final String server;
    private final int maxCallsPerConnection;
    private final int maxCalls;
    private final AtomicInteger calls = new AtomicInteger();
    private final BoundedCounts<InetAddress> perSource;
    private final RefusalLog overConnection = new RefusalLog(CallAdmission.class, "calls_per_connection");
    private final RefusalLog overTotal = new RefusalLog(CallAdmission.class, "calls");
    private final RefusalLog overShare = new RefusalLog(CallAdmission.class, "calls_per_source");

    /** Which bound a call met, and the sentence that says so. */
    private record Refused(RefusalLog log, String why) {
    }

    CallAdmission(String server, int maxCallsPerConnection, int maxCalls, int maxCallsPerSource) {
        this.server = server;
        this.maxCallsPerConnection = maxCallsPerConnection;
        this.maxCalls = maxCalls;
        this.perSource = new BoundedCounts<>(maxCallsPerSource);
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
            ServerCallHandler<Q, R> next) {
        AtomicInteger onConnection = call.getAttributes().get(OPEN_CALLS);
        SocketAddress remote = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        if (onConnection == null || !(remote instanceof InetSocketAddress inet)) {
            return next.startCall(call, headers);
        }
        InetAddress source = inet.getAddress();
        Optional<Refused> refused = admit(onConnection, source);
        if (refused.isPresent()) {
            String why = refused.get().why();
            refused.get().log().refused(server + ": call " + call.getMethodDescriptor().getFullMethodName() + " from "
                    + remote + " refused: " + why + "; RESOURCE_EXHAUSTED");
            call.close(Status.RESOURCE_EXHAUSTED.withDescription(why), new Metadata());
            return new ServerCall.Listener<>() { };
        }
        ServerCall.Listener<Q> listener;
        try {
            listener = next.startCall(call, headers);
        } catch (RuntimeException e) {
            release(onConnection, source);
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
                    release(onConnection, source);
                }
            }
        };
    }

    /** Takes a place on the connection, for the source and in all; or says which bound is full. */
    private Optional<Refused> admit(AtomicInteger onConnection, InetAddress source) {
        if (onConnection.incrementAndGet() > maxCallsPerConnection) {
            onConnection.decrementAndGet();
            return Optional.of(new Refused(overConnection, maxCallsPerConnection + " calls are open on this"
                    + " connection, its bound (control-plane.grpc.max-concurrent-calls-per-connection)"));
        }
        if (calls.getAndUpdate(n -> n < maxCalls ? n + 1 : n) >= maxCalls) {
            onConnection.decrementAndGet();
            return Optional.of(new Refused(overTotal, "the server holds " + maxCalls + " open calls, its bound"
                    + " (control-plane.grpc.max-calls)"));
        }
        if (!perSource.tryAcquire(source)) {
            calls.decrementAndGet();
            onConnection.decrementAndGet();
            return Optional.of(new Refused(overShare, perSource.bound() + " calls from this address are open, its"
                    + " bound (control-plane.grpc.max-calls-per-source)"));
        }
        return Optional.empty();
    }

    private void release(AtomicInteger onConnection, InetAddress source) {
        perSource.release(source);
        calls.decrementAndGet();
        onConnection.decrementAndGet();
    }
}
