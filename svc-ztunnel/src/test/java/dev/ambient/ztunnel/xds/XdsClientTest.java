package dev.ambient.ztunnel.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import dev.ambient.controlplane.ControlPlaneFixture;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.discovery.DeltaDiscoveryGrpc;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ztunnel's discovery client against a real gRPC server on loopback that plays the control
 * plane: initial sync, deltas, a NACKed bad resource, an outage, and a reconnect that tells the
 * server what the client already holds.
 */
class XdsClientTest {

    static final int PORT = 25910;

    /** The scripted control plane: remembers every request and lets the test push responses. */
    static final class ControlPlane extends DeltaDiscoveryGrpc.DeltaDiscoveryImplBase {
        final BlockingQueue<DeltaDiscoveryRequest> requests = new LinkedBlockingQueue<>();
        final Map<String, StreamObserver<DeltaDiscoveryResponse>> streams = new ConcurrentHashMap<>();
        final AtomicInteger nonces = new AtomicInteger();
        volatile StreamObserver<DeltaDiscoveryResponse> current;

        @Override
        public StreamObserver<DeltaDiscoveryRequest> deltaStream(StreamObserver<DeltaDiscoveryResponse> out) {
            current = out;
            return ControlPlaneFixture.collecting(requests);
        }

        void push(String type, List<? extends com.google.protobuf.Message> resources, List<String> removed) {
            DeltaDiscoveryResponse.Builder b = DeltaDiscoveryResponse.newBuilder().setTypeUrl(type)
                    .setNonce("n" + nonces.incrementAndGet()).addAllRemovedResources(removed);
            for (var m : resources) {
                b.addResources(Resource.newBuilder().setName(ResourceTypes.nameOf(m)).setVersion(
                        Integer.toHexString(m.hashCode())).setResource(Any.pack(m)));
            }
            synchronized (this) {
                current.onNext(b.build());
            }
        }

        void pushRaw(DeltaDiscoveryResponse r) {
            synchronized (this) {
                current.onNext(r);
            }
        }
    }

    Server server;
    XdsClient client;
    @TempDir
    java.nio.file.Path dir;
    ControlPlaneFixture tls;
    /** The authorization metadata of every stream the control plane saw. */
    final List<String> authorizations = new java.util.concurrent.CopyOnWriteArrayList<>();

    XdsClient client(WorkloadStore store) {
        return new XdsClient(tls.endpoint("127.0.0.1:" + PORT, "xds.istio-system.svc"), "node-a", store);
    }

    @AfterEach
    void stop() throws Exception {
        if (client != null) {
            client.close();
        }
        if (server != null) {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    static Workload workload(String name, int lastOctet) {
        return Workload.newBuilder().setUid("Kubernetes//Pod/default/" + name).setName(name).setNamespace("default")
                .addAddresses(ByteString.copyFrom(new byte[] {127, 0, (byte) 120, (byte) lastOctet}))
                .setNode("node-a").build();
    }

    @Test
    void aZtunnelWithAControlPlaneButNoMountedRootDoesNotStart() {
        java.util.Properties p = new java.util.Properties();
        p.put("ztunnel.xds-address", "127.0.0.1:" + PORT);
        p.put("ztunnel.identity.root-cert-file", dir.resolve("missing/root-cert.pem").toString());
        p.put("ztunnel.ports.admin", "0");
        p.put("ztunnel.ports.socks5", "0");
        var cfg = new io.smallrye.config.SmallRyeConfigBuilder().withMapping(dev.ambient.ztunnel.config.ZtunnelConfig.class)
                .withConverter(java.time.Duration.class, 100, new io.quarkus.runtime.configuration.DurationConverter())
                .withSources(new io.smallrye.config.PropertiesConfigSource(p, "test", 500)).build();
        var node = new dev.ambient.ztunnel.ZtunnelNode(cfg.getConfigMapping(dev.ambient.ztunnel.config.ZtunnelConfig.class),
                new io.micrometer.core.instrument.simple.SimpleMeterRegistry());
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, node::start);
        assertTrue(e.getMessage().contains("cannot read the mesh root certificate " + dir.resolve("missing/root-cert.pem"))
                && e.getMessage().contains("istio-ca-root-cert"), e.getMessage());
        node.close();
    }

    Server start(ControlPlane cp) throws Exception {
        if (tls == null) {
            tls = new ControlPlaneFixture(dir, "ztunnel-node-a-token");
        }
        io.grpc.ServerInterceptor record = new io.grpc.ServerInterceptor() {
            @Override
            public <Q, R> io.grpc.ServerCall.Listener<Q> interceptCall(io.grpc.ServerCall<Q, R> call, io.grpc.Metadata headers,
                    io.grpc.ServerCallHandler<Q, R> next) {
                authorizations.add(String.valueOf(headers.get(
                        io.grpc.Metadata.Key.of("authorization", io.grpc.Metadata.ASCII_STRING_MARSHALLER))));
                return next.startCall(call, headers);
            }
        };
        return NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", PORT))
                .sslContext(tls.serverTls("xds.istio-system.svc"))
                .addService(io.grpc.ServerInterceptors.intercept(cp, record)).build().start();
    }

    @Test
    void syncsAppliesDeltasNacksBadResourcesAndSurvivesAnOutage() throws Exception {
        ControlPlane cp = new ControlPlane();
        server = start(cp);
        WorkloadStore store = new WorkloadStore();
        client = client(store);
        client.start();

        // The client subscribes to the four ztunnel types, with its node.
        for (int i = 0; i < 4; i++) {
            DeltaDiscoveryRequest sub = cp.requests.poll(10, TimeUnit.SECONDS);
            assertTrue(sub != null && ResourceTypes.ZTUNNEL_TYPES.contains(sub.getTypeUrl()), String.valueOf(sub));
            assertEquals("ztunnel~node-a", sub.getNode().getId());
        }
        assertEquals(List.of("Bearer ztunnel-node-a-token"), authorizations, "the stream carries the ztunnel's token");
        cp.push(ResourceTypes.WORKLOAD, List.of(workload("a", 1), workload("b", 2)), List.of());
        cp.push(ResourceTypes.SERVICE, List.of(Service.newBuilder().setName("s").setNamespace("default")
                .setHostname("s.default.svc.cluster.local").build()), List.of());
        cp.push(ResourceTypes.AUTHORIZATION, List.of(), List.of());
        cp.push(ResourceTypes.PEER_AUTHENTICATION, List.of(), List.of());
        await(() -> client.synced() && store.current().workloads().size() == 2);
        assertEquals(4, drainAcks(cp));

        // A delta: one added, one removed.
        cp.push(ResourceTypes.WORKLOAD, List.of(workload("c", 3)), List.of("Kubernetes//Pod/default/a"));
        await(() -> store.current().workloadByUid("Kubernetes//Pod/default/c").isPresent()
                && store.current().workloadByUid("Kubernetes//Pod/default/a").isEmpty());

        // A resource of the wrong type inside a Workload response is refused, state unchanged.
        cp.pushRaw(DeltaDiscoveryResponse.newBuilder().setTypeUrl(ResourceTypes.WORKLOAD).setNonce("bad")
                .addResources(Resource.newBuilder().setName("x").setResource(Any.pack(Service.getDefaultInstance())))
                .build());
        DeltaDiscoveryRequest nack = awaitRequest(cp, r -> r.getResponseNonce().equals("bad"));
        assertTrue(nack.hasErrorDetail(), "NACK carries the reason");
        assertEquals(2, store.current().workloads().size());

        // The control plane goes away: the state stays; it comes back: the client tells what it holds.
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        await(() -> !client.connected());
        assertEquals(2, store.current().workloads().size(), "last good state kept while xds is down");
        ControlPlane again = new ControlPlane();
        server = start(again);
        DeltaDiscoveryRequest resubscribe = awaitRequest(again, r -> r.getTypeUrl().equals(ResourceTypes.WORKLOAD));
        assertEquals(java.util.Set.of("Kubernetes//Pod/default/b", "Kubernetes//Pod/default/c"),
                resubscribe.getInitialResourceVersionsMap().keySet());
    }

    private static int drainAcks(ControlPlane cp) throws InterruptedException {
        int acks = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (acks < 4 && System.nanoTime() < deadline) {
            DeltaDiscoveryRequest r = cp.requests.poll(100, TimeUnit.MILLISECONDS);
            if (r != null && !r.getResponseNonce().isEmpty() && !r.hasErrorDetail()) {
                acks++;
            }
        }
        return acks;
    }

    private static DeltaDiscoveryRequest awaitRequest(ControlPlane cp,
            java.util.function.Predicate<DeltaDiscoveryRequest> p) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (System.nanoTime() < deadline) {
            DeltaDiscoveryRequest r = cp.requests.poll(100, TimeUnit.MILLISECONDS);
            if (r != null && p.test(r)) {
                return r;
            }
        }
        throw new AssertionError("request not seen");
    }

    private static void await(Callable<Boolean> c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            if (c.call()) {
                return;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("condition not met in 10 s");
    }
}
