package dev.ambient.discovery;

import com.google.protobuf.Message;
import dev.ambient.proto.l7.L7Authentication;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import java.util.Map;

/**
 * The type URLs of the resources delta discovery carries, and how each resource is named.
 * Shared by the control plane (svc-xds) and its clients (ztunnel, waypoint).
 */
public final class ResourceTypes {

    private static final String PREFIX = "type.googleapis.com/";

    /** Named by uid. */
    public static final String WORKLOAD = PREFIX + Workload.getDescriptor().getFullName();
    /** Named "namespace/hostname". */
    public static final String SERVICE = PREFIX + Service.getDescriptor().getFullName();
    /** Named "namespace/name". */
    public static final String AUTHORIZATION = PREFIX + Authorization.getDescriptor().getFullName();
    /** Named "namespace/name". */
    public static final String PEER_AUTHENTICATION = PREFIX + PeerAuthentication.getDescriptor().getFullName();
    /** Waypoints only; named "namespace/hostname" of the service. */
    public static final String SERVICE_ROUTES = PREFIX + ServiceRoutes.getDescriptor().getFullName();
    /** Waypoints only; named "namespace/name". */
    public static final String L7_AUTHORIZATION = PREFIX + L7Authorization.getDescriptor().getFullName();
    /** Waypoints only (RequestAuthentication); named "namespace/name". */
    public static final String L7_AUTHENTICATION = PREFIX + L7Authentication.getDescriptor().getFullName();

    /** What a ztunnel subscribes to. */
    public static final java.util.List<String> ZTUNNEL_TYPES = java.util.List.of(WORKLOAD, SERVICE, AUTHORIZATION,
            PEER_AUTHENTICATION);

    private static final Map<String, Class<? extends Message>> CLASSES = Map.of(
            WORKLOAD, Workload.class, SERVICE, Service.class, AUTHORIZATION, Authorization.class,
            PEER_AUTHENTICATION, PeerAuthentication.class, SERVICE_ROUTES, ServiceRoutes.class,
            L7_AUTHORIZATION, L7Authorization.class, L7_AUTHENTICATION, L7Authentication.class);

    private ResourceTypes() {
    }

    /** The message class of a type URL, or null for a type we do not know. */
    public static Class<? extends Message> messageClass(String typeUrl) {
        return CLASSES.get(typeUrl);
    }

    public static String nameOf(Message m) {
        return switch (m) {
            case Workload w -> w.getUid();
            case Service s -> s.getNamespace() + "/" + s.getHostname();
            case Authorization a -> a.getNamespace() + "/" + a.getName();
            case PeerAuthentication p -> p.getNamespace() + "/" + p.getName();
            case ServiceRoutes r -> r.getServiceNamespace() + "/" + r.getServiceHostname();
            case L7Authorization a -> a.getNamespace() + "/" + a.getName();
            case L7Authentication a -> a.getNamespace() + "/" + a.getName();
            default -> throw new IllegalArgumentException("not a discovery resource: " + m.getDescriptorForType());
        };
    }
}
