package dev.ambient.discovery;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.proto.discovery.DeltaDiscoveryGrpc;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Node;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.proto.discovery.Status;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * A delta discovery stream from svc-xds, shared by the ztunnel and the waypoint, over the control
 * plane's TLS channel (svc-xds verified against the mounted mesh root and its Service name) with
 * the caller's service-account token; svc-xds serves it only what that account may see. It subscribes to the
 * given types, applies each delta to what it holds, ACKs it, and NACKs a response it cannot use
 * (keeping what it had). Once every type has arrived, each change publishes the whole held state
 * to the consumer. When the control plane is unreachable the consumer keeps the last good state
 * and the stream reconnects with jittered backoff, telling the server what it already holds so
 * that only differences are sent.
 */
public final class DeltaDiscoveryClient implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(DeltaDiscoveryClient.class);

    /** Everything held, by type URL: the resources of that type. */
    public record Snapshot(Map<String, List<Message>> byType) {
        public <T extends Message> List<T> of(String typeUrl, Class<T> cls) {
            return byType.getOrDefault(typeUrl, List.of()).stream().map(cls::cast).toList();
        }
    }

    /** One held resource: its version and content. */
    private record Held(String version, Message resource) {
    }

    /**
     * How long the stream may be silent before the client pings svc-xds, so that a dead server or a
     * NAT that forgot the connection is noticed. svc-xds and svc-ca permit pings every 20 s
     * ({@code quarkus.grpc.server.netty.permit-keep-alive-time}); a client pinging more often than
     * a server permits is sent GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") after three strikes.
     */
    public static final Duration KEEPALIVE_TIME = Duration.ofSeconds(30);

    private final ControlPlaneEndpoint endpoint;
    private final Duration keepAliveTime;
    private final Node node;
    private final List<String> types;
    private final Consumer<Snapshot> publish;
    private final ScheduledExecutorService scheduler;
    // Touched only on the scheduler thread: gRPC callbacks hop onto it.
    private final Map<String, Map<String, Held>> held = new HashMap<>();
    private final Set<String> typesSynced = new HashSet<>();
    private ManagedChannel channel;
    private StreamObserver<DeltaDiscoveryRequest> requests;
    private int failures;
    private volatile boolean synced;
    private volatile boolean connected;
    private volatile String lastError;
    private volatile boolean closed;
    private volatile long acks;
    private volatile long nacks;

    /**
     * @param endpoint svc-xds
     * @param types the type URLs to subscribe to ({@link ResourceTypes})
     * @param publish called on the client's own thread with the whole state after each accepted change
     */
    public DeltaDiscoveryClient(ControlPlaneEndpoint endpoint, Node node, List<String> types, Consumer<Snapshot> publish,
            String threadName) {
        this(endpoint, KEEPALIVE_TIME, node, types, publish, threadName);
    }

    /** @param keepAliveTime silence before a ping (gRPC raises anything below 10 s to 10 s) */
    public DeltaDiscoveryClient(ControlPlaneEndpoint endpoint, Duration keepAliveTime, Node node, List<String> types,
            Consumer<Snapshot> publish, String threadName) {
        this.endpoint = endpoint;
        this.keepAliveTime = keepAliveTime;
        this.node = node;
        this.types = List.copyOf(types);
        this.publish = publish;
        this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, threadName);
            t.setDaemon(true);
            return t;
        });
    }

    public void start() {
        // A 10,000-pod initial sync is about 3 MiB; leave room above gRPC's 4 MiB default.
        channel = endpoint.open(b -> b.maxInboundMessageSize(64 << 20)
                .keepAliveTime(keepAliveTime.toMillis(), TimeUnit.MILLISECONDS));
        scheduler.execute(this::connect);
    }

    /** True once every subscribed type has been received at least once. */
    public boolean synced() {
        return synced;
    }

    public boolean connected() {
        return connected;
    }

    public String lastError() {
        return lastError;
    }

    public long acks() {
        return acks;
    }

    public long nacks() {
        return nacks;
    }

    public String target() {
        return endpoint.toString();
    }

    private void connect() {
        if (closed) {
            return;
        }
        Stream stream = new Stream();
        requests = DeltaDiscoveryGrpc.newStub(channel).withCallCredentials(endpoint.token()).deltaStream(stream);
        for (String type : types) {
            DeltaDiscoveryRequest.Builder r = DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(type);
            held.getOrDefault(type, Map.of()).forEach((name, h) -> r.putInitialResourceVersions(name, h.version()));
            requests.onNext(r.build());
        }
        LOG.infof("xds: subscribing to %s at %s as %s (%d resources already held)", types, endpoint, node.getId(),
                held.values().stream().mapToInt(Map::size).sum());
    }

    private final class Stream implements StreamObserver<DeltaDiscoveryResponse> {
        @Override
        public void onNext(DeltaDiscoveryResponse response) {
            onScheduler(() -> apply(response));
        }

        @Override
        public void onError(Throwable t) {
            onScheduler(() -> reconnectLater(t.getMessage()));
        }

        @Override
        public void onCompleted() {
            onScheduler(() -> reconnectLater("stream closed by server"));
        }
    }

    /** Hops a gRPC callback onto the scheduler; after close() it has stopped, and there is nothing to do. */
    private void onScheduler(Runnable task) {
        if (closed) {
            return;
        }
        try {
            scheduler.execute(task);
        } catch (RejectedExecutionException stopped) {
            // close() ran between the check and here: the callback came too late to matter
        }
    }

    private void apply(DeltaDiscoveryResponse response) {
        connected = true;
        failures = 0;
        String type = response.getTypeUrl();
        Class<? extends Message> cls = ResourceTypes.messageClass(type);
        if (cls == null || !types.contains(type)) {
            nack(response, "type " + type + " not subscribed");
            return;
        }
        Map<String, Held> next = new HashMap<>(held.getOrDefault(type, Map.of()));
        try {
            for (Resource r : response.getResourcesList()) {
                Any any = r.getResource();
                if (!any.getTypeUrl().equals(type)) {
                    throw new InvalidProtocolBufferException("resource " + r.getName() + " is " + any.getTypeUrl());
                }
                next.put(r.getName(), new Held(r.getVersion(), any.unpack(cls)));
            }
        } catch (InvalidProtocolBufferException e) {
            nack(response, e.getMessage());
            return;
        }
        response.getRemovedResourcesList().forEach(next::remove);
        held.put(type, next);
        typesSynced.add(type);
        requests.onNext(DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(type)
                .setResponseNonce(response.getNonce()).build());
        acks++;
        if (typesSynced.containsAll(types)) {
            Map<String, List<Message>> all = new HashMap<>();
            held.forEach((t, m) -> all.put(t, m.values().stream().map(Held::resource).toList()));
            publish.accept(new Snapshot(Map.copyOf(all)));
            if (!synced) {
                synced = true;
                LOG.infof("xds: synced from %s", endpoint);
            }
        }
    }

    private void nack(DeltaDiscoveryResponse response, String why) {
        nacks++;
        lastError = why;
        LOG.warnf("xds: rejecting %s (nonce %s): %s; keeping the previous state", response.getTypeUrl(),
                response.getNonce(), why);
        requests.onNext(DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(response.getTypeUrl())
                .setResponseNonce(response.getNonce())
                .setErrorDetail(Status.newBuilder().setCode(3).setMessage(why)).build());
    }

    private void reconnectLater(String why) {
        if (closed) {
            return;
        }
        connected = false;
        lastError = why;
        // The server's max-connection-age (GOAWAY NO_ERROR "max_age", then the grace): routine, every
        // 30 min by default, so it is neither a failure for the backoff nor a warning.
        boolean aged = why != null && why.endsWith("debug data: max_age");
        if (!aged) {
            failures++;
        }
        long base = Math.min(30_000, 500L << Math.min(failures, 6));
        long delay = base / 2 + ThreadLocalRandom.current().nextLong(base / 2 + 1);
        if (aged) {
            LOG.infof("xds: %s replaced the stream's connection at its maximum age; serving the last good state,"
                    + " resubscribing in %d ms", endpoint, delay);
        } else {
            LOG.warnf("xds: stream to %s lost (%s); serving the last good state, reconnecting in %d ms", endpoint, why,
                    delay);
        }
        typesSynced.clear();
        scheduler.schedule(this::connect, delay, TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
        closed = true;
        scheduler.shutdownNow();
        if (requests != null) {
            try {
                requests.onCompleted();
            } catch (RuntimeException ignored) {
                // already gone
            }
        }
        if (channel != null) {
            channel.shutdownNow();
        }
    }
}
