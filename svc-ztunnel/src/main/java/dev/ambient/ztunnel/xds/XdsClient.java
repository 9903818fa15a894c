package dev.ambient.ztunnel.xds;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.discovery.DeltaDiscoveryGrpc;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Node;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.proto.discovery.Status;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.state.StateSnapshot;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * The ztunnel's configuration stream from svc-xds: subscribes to workloads, services,
 * authorization and peer authentication, applies each delta to the store, ACKs it, and NACKs a
 * response it cannot use (keeping what it had). When the control plane is unreachable it keeps
 * serving the last good state and reconnects with backoff, telling the server what it already
 * holds so that only differences are sent.
 */
public final class XdsClient implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(XdsClient.class);

    /** One held resource: its version and content. */
    private record Held(String version, Message resource) {
    }

    private final String target;
    private final Node node;
    private final WorkloadStore store;
    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "ztunnel-xds");
        t.setDaemon(true);
        return t;
    });
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

    public XdsClient(String target, String nodeName, WorkloadStore store) {
        this.target = target;
        this.store = store;
        this.node = Node.newBuilder().setId("ztunnel~" + nodeName).setNodeName(nodeName)
                .setRole(Node.Role.ZTUNNEL).build();
    }

    public void start() {
        // A 10,000-pod initial sync is about 3 MiB; leave room above gRPC's 4 MiB default.
        channel = ManagedChannelBuilder.forTarget(target).usePlaintext().maxInboundMessageSize(64 << 20)
                .keepAliveTime(30, TimeUnit.SECONDS).build();
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

    private void connect() {
        if (closed) {
            return;
        }
        Stream stream = new Stream();
        requests = DeltaDiscoveryGrpc.newStub(channel).deltaStream(stream);
        for (String type : ResourceTypes.ZTUNNEL_TYPES) {
            DeltaDiscoveryRequest.Builder r = DeltaDiscoveryRequest.newBuilder().setNode(node).setTypeUrl(type);
            held.getOrDefault(type, Map.of()).forEach((name, h) -> r.putInitialResourceVersions(name, h.version()));
            requests.onNext(r.build());
        }
        LOG.infof("xds: subscribing to %s at %s (%d resources already held)", ResourceTypes.ZTUNNEL_TYPES, target,
                held.values().stream().mapToInt(Map::size).sum());
    }

    private final class Stream implements StreamObserver<DeltaDiscoveryResponse> {
        @Override
        public void onNext(DeltaDiscoveryResponse response) {
            scheduler.execute(() -> apply(response));
        }

        @Override
        public void onError(Throwable t) {
            scheduler.execute(() -> reconnectLater(t.getMessage()));
        }

        @Override
        public void onCompleted() {
            scheduler.execute(() -> reconnectLater("stream closed by server"));
        }
    }

    private void apply(DeltaDiscoveryResponse response) {
        connected = true;
        failures = 0;
        String type = response.getTypeUrl();
        Class<? extends Message> cls = ResourceTypes.messageClass(type);
        if (cls == null || !ResourceTypes.ZTUNNEL_TYPES.contains(type)) {
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
        if (typesSynced.containsAll(ResourceTypes.ZTUNNEL_TYPES)) {
            publish();
            if (!synced) {
                synced = true;
                LOG.infof("xds: synced from %s", target);
            }
        }
    }

    private void publish() {
        store.replace(StateSnapshot.of(
                values(ResourceTypes.WORKLOAD, Workload.class),
                values(ResourceTypes.SERVICE, Service.class),
                values(ResourceTypes.AUTHORIZATION, Authorization.class),
                values(ResourceTypes.PEER_AUTHENTICATION, PeerAuthentication.class)));
    }

    private <T extends Message> List<T> values(String type, Class<T> cls) {
        return held.getOrDefault(type, Map.of()).values().stream().map(h -> cls.cast(h.resource())).toList();
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
        failures++;
        long base = Math.min(30_000, 500L << Math.min(failures, 6));
        long delay = base / 2 + ThreadLocalRandom.current().nextLong(base / 2 + 1);
        LOG.warnf("xds: stream to %s lost (%s); serving the last good state, reconnecting in %d ms", target, why,
                delay);
        typesSynced.clear();
        scheduler.schedule(this::connect, delay, TimeUnit.MILLISECONDS);
    }


    public long acks() {
        return acks;
    }

    public long nacks() {
        return nacks;
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
