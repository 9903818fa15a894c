package dev.ambient.ca;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.net.SocketAddress;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * The CA's gRPC port replaces a connection once it is {@code control-plane.grpc.max-connection-age}
 * old (GOAWAY, then closed after the grace), so that clients spread over replicas added since they
 * connected; a grpc-java client, as the proxies' CA client is, opens a new connection for its next
 * call and is served.
 */
@QuarkusTest
@TestProfile(ConnectionAgeTest.ShortAge.class)
class ConnectionAgeTest {

    public static class ShortAge implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("control-plane.grpc.max-connection-age", "2s",
                    "control-plane.grpc.max-connection-age-grace", "1s");
        }
    }

    /** The connection each call went over: its transport's attributes (one object per connection) and client end. */
    static final class Connections implements ClientInterceptor {
        final List<Attributes> seen = new CopyOnWriteArrayList<>();

        @Override
        public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
            return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
                @Override
                public void start(Listener<R> listener, Metadata headers) {
                    ClientCall<Q, R> call = this;
                    super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
                        @Override
                        public void onHeaders(Metadata h) {
                            seen.add(call.getAttributes());
                            super.onHeaders(h);
                        }
                    }, headers);
                }
            };
        }
    }

    @Test
    void anAgedConnectionIsReplacedAndTheClientIsServedOnTheNext() throws Exception {
        Connections connections = new Connections();
        try (CaClient client = CaClient.from("127.0.0.2", () -> CaServingTlsTest.ROOT)) {
            CertificateServiceGrpc.CertificateServiceBlockingStub stub = client.stub("box-sleep")
                    .withInterceptors(connections);
            assertEquals(1, stub.getTrustBundle(TrustBundleRequest.getDefaultInstance()).getRootsCount());
            Thread.sleep(4_000); // 2 s (+ up to 10% jitter), then 1 s of grace
            assertEquals(1, stub.getTrustBundle(TrustBundleRequest.getDefaultInstance()).getRootsCount());
        }
        assertEquals(2, connections.seen.size());
        SocketAddress first = connections.seen.get(0).get(Grpc.TRANSPORT_ATTR_LOCAL_ADDR);
        SocketAddress second = connections.seen.get(1).get(Grpc.TRANSPORT_ATTR_LOCAL_ADDR);
        System.out.printf("first call from %s, second from %s%n", first, second);
        assertNotSame(connections.seen.get(0), connections.seen.get(1),
                "the second call went over the first connection (" + first + "): it was not replaced at its max age");
    }
}
