package dev.ambient.ztunnel.xds;

import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.discovery.DeltaDiscoveryClient;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.discovery.Node;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.state.StateSnapshot;
import dev.ambient.ztunnel.state.WorkloadStore;

/**
 * The ztunnel's configuration stream from svc-xds: workloads, services, authorization and peer
 * authentication over the shared {@link DeltaDiscoveryClient} (TLS to svc-xds verified by the mesh
 * root, the ztunnel's token, ACK/NACK, last good state, resume with held versions); each accepted
 * change replaces the store's snapshot. svc-xds serves it only as the node its token is bound to.
 */
public final class XdsClient implements AutoCloseable {

    private final DeltaDiscoveryClient stream;

    public XdsClient(ControlPlaneEndpoint xds, String nodeName, WorkloadStore store) {
        Node node = Node.newBuilder().setId("ztunnel~" + nodeName).setNodeName(nodeName)
                .setRole(Node.Role.ZTUNNEL).build();
        this.stream = new DeltaDiscoveryClient(xds, node, ResourceTypes.ZTUNNEL_TYPES, s -> store.replace(
                StateSnapshot.of(
                        s.of(ResourceTypes.WORKLOAD, Workload.class),
                        s.of(ResourceTypes.SERVICE, Service.class),
                        s.of(ResourceTypes.AUTHORIZATION, Authorization.class),
                        s.of(ResourceTypes.PEER_AUTHENTICATION, PeerAuthentication.class))),
                "ztunnel-xds");
    }

    public void start() {
        stream.start();
    }

    /** True once every subscribed type has been received at least once. */
    public boolean synced() {
        return stream.synced();
    }

    public boolean connected() {
        return stream.connected();
    }

    public String lastError() {
        return stream.lastError();
    }

    public long acks() {
        return stream.acks();
    }

    public long nacks() {
        return stream.nacks();
    }

    @Override
    public void close() {
        stream.close();
    }
}
