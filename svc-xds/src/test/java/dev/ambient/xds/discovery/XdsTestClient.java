package dev.ambient.xds.discovery;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.ambient.proto.discovery.DeltaDiscoveryGrpc;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Node;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.proto.discovery.Status;
import dev.ambient.controlplane.ControlPlaneTls;
import dev.ambient.controlplane.MeshRootFile;
import dev.ambient.controlplane.ServerNameTrustManager;
import dev.ambient.xds.XdsTestTls;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A real gRPC delta discovery client for tests: TLS 1.3 to the server verified against the test
 * mesh root, with a token of the test token file (a ztunnel's bound to its node, a waypoint's
 * to its Gateway's account); subscribes, records every response, and either lets the test
 * ACK/NACK by hand or ACKs by itself ({@link #autoAck}), keeping what it holds.
 */
final class XdsTestClient implements AutoCloseable {

    /** The gRPC test port the server listens on (57010 unless overridden, e.g. -Dquarkus.grpc.server.test-port). */
    static int port() {
        return org.eclipse.microprofile.config.ConfigProvider.getConfig()
                .getOptionalValue("quarkus.grpc.server.test-port", Integer.class).orElse(57010);
    }

    /** The debug pages' test port (loopback only). */
    static int debugPort() {
        return org.eclipse.microprofile.config.ConfigProvider.getConfig()
                .getOptionalValue("xds.debug.port", Integer.class).orElse(57080);
    }

    /** The management (metrics) test port. */
    static int metricsPort() {
        return org.eclipse.microprofile.config.ConfigProvider.getConfig()
                .getOptionalValue("quarkus.management.test-port", Integer.class).orElse(57014);
    }

    final Node node;
    final ManagedChannel channel;
    final StreamObserver<DeltaDiscoveryRequest> requests;
    final BlockingQueue<DeltaDiscoveryResponse> responses = new LinkedBlockingQueue<>();
    /** type -> name -> version, as applied. */
    final Map<String, Map<String, String>> held = new ConcurrentHashMap<>();
    volatile boolean autoAck;
    volatile Consumer<DeltaDiscoveryResponse> onResponse;
    volatile Throwable error;
    volatile boolean completed;

    XdsTestClient(Node node, ManagedChannel channel, String token, boolean autoAck, Consumer<DeltaDiscoveryResponse> cb) {
        this.node = node;
        this.channel = channel;
        this.autoAck = autoAck;
        this.onResponse = cb;
        var stub = DeltaDiscoveryGrpc.newStub(channel);
        if (token != null) {
            Metadata headers = new Metadata();
            headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
            stub = stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
        }
        this.requests = stub.deltaStream(new StreamObserver<>() {
            @Override
            public void onNext(DeltaDiscoveryResponse r) {
                Consumer<DeltaDiscoveryResponse> c = onResponse;
                if (c != null) {
                    c.accept(r);
                }
                if (XdsTestClient.this.autoAck) {
                    apply(r);
                    ack(r);
                } else {
                    responses.add(r);
                }
            }

            @Override
            public void onError(Throwable t) {
                error = t;
            }

            @Override
            public void onCompleted() {
                completed = true;
            }
        });
    }

    /** A TLS channel that checks the server against the test root and the name {@code xds.istio-system.svc}. */
    static NettyChannelBuilder tls() {
        return NettyChannelBuilder.forAddress("localhost", port())
                .sslContext(ControlPlaneTls.clientContext(new ServerNameTrustManager(MeshRootFile.load(XdsTestTls.ROOT),
                        XdsTestTls.SERVER_NAME)))
                .overrideAuthority(XdsTestTls.SERVER_NAME).maxInboundMessageSize(256 << 20);
    }

    static ManagedChannel channel() {
        return tls().build();
    }

    /** A channel that adds every inbound message's size on the wire (after compression) to {@code wireBytes}. */
    static ManagedChannel countingChannel(java.util.concurrent.atomic.AtomicLong wireBytes) {
        io.grpc.ClientStreamTracer.Factory tracer = new io.grpc.ClientStreamTracer.Factory() {
            @Override
            public io.grpc.ClientStreamTracer newClientStreamTracer(io.grpc.ClientStreamTracer.StreamInfo info,
                    io.grpc.Metadata headers) {
                return new io.grpc.ClientStreamTracer() {
                    @Override
                    public void inboundWireSize(long bytes) {
                        wireBytes.addAndGet(bytes);
                    }
                };
            }
        };
        return tls()
                .intercept(new io.grpc.ClientInterceptor() {
                    @Override
                    public <Q, A> io.grpc.ClientCall<Q, A> interceptCall(io.grpc.MethodDescriptor<Q, A> method,
                            io.grpc.CallOptions options, io.grpc.Channel next) {
                        return next.newCall(method, options.withStreamTracerFactory(tracer));
                    }
                }).build();
    }

    static Node ztunnelNode(String nodeName) {
        return Node.newBuilder().setId("ztunnel~" + nodeName).setNodeName(nodeName).setRole(Node.Role.ZTUNNEL).build();
    }

    static Node waypointNode(String gateway) {
        return Node.newBuilder().setId("waypoint~" + gateway + "~pod-1").setRole(Node.Role.WAYPOINT).setGateway(gateway)
                .build();
    }

    static XdsTestClient ztunnel(String nodeName) {
        return new XdsTestClient(ztunnelNode(nodeName), channel(), XdsTestTls.ztunnelToken(nodeName), false, null);
    }

    static XdsTestClient ztunnel(String nodeName, ManagedChannel channel, Consumer<DeltaDiscoveryResponse> cb) {
        return new XdsTestClient(ztunnelNode(nodeName), channel, XdsTestTls.ztunnelToken(nodeName), true, cb);
    }

    static XdsTestClient waypoint(String gateway) {
        return new XdsTestClient(waypointNode(gateway), channel(), XdsTestTls.waypointToken(gateway), false, null);
    }

    void subscribe(String type) {
        subscribe(type, Map.of(), List.of());
    }

    void subscribe(String type, Map<String, String> initialVersions, List<String> names) {
        send(DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(type)
                .putAllInitialResourceVersions(initialVersions).addAllResourceNamesSubscribe(names).build());
    }

    void subscribeMore(String type, List<String> subscribe, List<String> unsubscribe) {
        send(DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(type).addAllResourceNamesSubscribe(subscribe)
                .addAllResourceNamesUnsubscribe(unsubscribe).build());
    }

    synchronized void send(DeltaDiscoveryRequest r) {
        requests.onNext(r);
    }

    void ack(DeltaDiscoveryResponse r) {
        send(DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(r.getTypeUrl()).setResponseNonce(r.getNonce())
                .build());
    }

    void nack(DeltaDiscoveryResponse r, String message) {
        send(DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(r.getTypeUrl()).setResponseNonce(r.getNonce())
                .setErrorDetail(Status.newBuilder().setCode(3).setMessage(message)).build());
    }

    /** What a client does with a response it accepts. */
    void apply(DeltaDiscoveryResponse r) {
        Map<String, String> m = held.computeIfAbsent(r.getTypeUrl(), t -> new ConcurrentHashMap<>());
        for (Resource res : r.getResourcesList()) {
            m.put(res.getName(), res.getVersion());
        }
        r.getRemovedResourcesList().forEach(m::remove);
    }

    /** Takes the next response (waiting up to 5 s), applies it, and ACKs it. */
    DeltaDiscoveryResponse nextAcked() {
        DeltaDiscoveryResponse r = next();
        apply(r);
        ack(r);
        return r;
    }

    DeltaDiscoveryResponse next() {
        try {
            DeltaDiscoveryResponse r = responses.poll(5, TimeUnit.SECONDS);
            assertNotNull(r, "no response within 5 s (error: " + error + ", completed: " + completed + ")");
            return r;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Receives, applies and ACKs one response per type (in any order), returned by type. */
    Map<String, DeltaDiscoveryResponse> nextAckedPerType(Collection<String> types) {
        Map<String, DeltaDiscoveryResponse> out = new HashMap<>();
        while (out.size() < types.size()) {
            DeltaDiscoveryResponse r = nextAcked();
            if (out.put(r.getTypeUrl(), r) != null) {
                throw new AssertionError("two responses of " + r.getTypeUrl() + " before the others");
            }
        }
        return out;
    }

    void expectNothing(long millis) {
        try {
            DeltaDiscoveryResponse r = responses.poll(millis, TimeUnit.MILLISECONDS);
            assertNull(r, () -> "unexpected response " + r);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    Map<String, String> held(String type) {
        return held.getOrDefault(type, Map.of());
    }

    @Override
    public void close() {
        try {
            requests.onCompleted();
        } catch (RuntimeException ignored) {
            // already closed
        }
        channel.shutdownNow();
    }
}
