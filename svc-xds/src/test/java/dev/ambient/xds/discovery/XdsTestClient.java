package dev.ambient.xds.discovery;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.ambient.proto.discovery.DeltaDiscoveryGrpc;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Node;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.proto.discovery.Status;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
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
 * A real gRPC delta discovery client for tests: subscribes, records every response, and either
 * lets the test ACK/NACK by hand or ACKs by itself ({@link #autoAck}), keeping what it holds.
 */
final class XdsTestClient implements AutoCloseable {

    /** The gRPC test port the server listens on (57010 unless overridden, e.g. -Dquarkus.grpc.server.test-port). */
    static int port() {
        return org.eclipse.microprofile.config.ConfigProvider.getConfig()
                .getOptionalValue("quarkus.grpc.server.test-port", Integer.class).orElse(57010);
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

    private XdsTestClient(Node node, ManagedChannel channel, boolean autoAck, Consumer<DeltaDiscoveryResponse> cb) {
        this.node = node;
        this.channel = channel;
        this.autoAck = autoAck;
        this.onResponse = cb;
        this.requests = DeltaDiscoveryGrpc.newStub(channel).deltaStream(new StreamObserver<>() {
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

    static ManagedChannel channel() {
        return ManagedChannelBuilder.forAddress("localhost", port()).usePlaintext().maxInboundMessageSize(256 << 20)
                .build();
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
        return ManagedChannelBuilder.forAddress("localhost", port()).usePlaintext().maxInboundMessageSize(256 << 20)
                .intercept(new io.grpc.ClientInterceptor() {
                    @Override
                    public <Q, A> io.grpc.ClientCall<Q, A> interceptCall(io.grpc.MethodDescriptor<Q, A> method,
                            io.grpc.CallOptions options, io.grpc.Channel next) {
                        return next.newCall(method, options.withStreamTracerFactory(tracer));
                    }
                }).build();
    }

    static XdsTestClient ztunnel(String nodeName) {
        return new XdsTestClient(Node.newBuilder().setId("ztunnel~" + nodeName).setNodeName(nodeName)
                .setRole(Node.Role.ZTUNNEL).build(), channel(), false, null);
    }

    static XdsTestClient ztunnel(String nodeName, ManagedChannel channel, Consumer<DeltaDiscoveryResponse> cb) {
        return new XdsTestClient(Node.newBuilder().setId("ztunnel~" + nodeName).setNodeName(nodeName)
                .setRole(Node.Role.ZTUNNEL).build(), channel, true, cb);
    }

    static XdsTestClient waypoint(String gateway) {
        return new XdsTestClient(Node.newBuilder().setId("waypoint~" + gateway + "~pod-1").setRole(Node.Role.WAYPOINT)
                .setGateway(gateway).build(), channel(), false, null);
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
