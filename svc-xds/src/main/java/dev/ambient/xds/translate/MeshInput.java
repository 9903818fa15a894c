package dev.ambient.xds.translate;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * The Kubernetes objects a translation reads, as they are at one moment. Built-in kinds are
 * fabric8 model objects (of ConfigMaps, only Istio's mesh configuration {@code istio}); the Istio (security, ServiceEntry, DestinationRule) and Gateway API kinds are generic resources.
 */
public record MeshInput(List<Namespace> namespaces, List<Pod> pods, List<Service> services,
        List<EndpointSlice> endpointSlices, List<GenericKubernetesResource> authorizationPolicies,
        List<GenericKubernetesResource> peerAuthentications, List<GenericKubernetesResource> gateways,
        List<GenericKubernetesResource> httpRoutes, List<GenericKubernetesResource> serviceEntries,
        List<GenericKubernetesResource> destinationRules, List<GenericKubernetesResource> grpcRoutes,
        List<GenericKubernetesResource> tcpRoutes, List<GenericKubernetesResource> requestAuthentications,
        List<ConfigMap> configMaps) {

    public static final MeshInput EMPTY = builder().build();

    public MeshInput {
        namespaces = copy(namespaces);
        pods = copy(pods);
        services = copy(services);
        endpointSlices = copy(endpointSlices);
        authorizationPolicies = copy(authorizationPolicies);
        peerAuthentications = copy(peerAuthentications);
        gateways = copy(gateways);
        httpRoutes = copy(httpRoutes);
        serviceEntries = copy(serviceEntries);
        destinationRules = copy(destinationRules);
        grpcRoutes = copy(grpcRoutes);
        tcpRoutes = copy(tcpRoutes);
        requestAuthentications = copy(requestAuthentications);
        configMaps = copy(configMaps);
    }

    private static <T> List<T> copy(List<T> l) {
        return l == null ? List.of() : List.copyOf(l);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Sorts objects of any kind into an input; returns the objects it did not use. */
    public static final class Builder {
        private final List<Namespace> namespaces = new ArrayList<>();
        private final List<Pod> pods = new ArrayList<>();
        private final List<Service> services = new ArrayList<>();
        private final List<EndpointSlice> endpointSlices = new ArrayList<>();
        private final List<GenericKubernetesResource> authorizationPolicies = new ArrayList<>();
        private final List<GenericKubernetesResource> peerAuthentications = new ArrayList<>();
        private final List<GenericKubernetesResource> gateways = new ArrayList<>();
        private final List<GenericKubernetesResource> httpRoutes = new ArrayList<>();
        private final List<GenericKubernetesResource> serviceEntries = new ArrayList<>();
        private final List<GenericKubernetesResource> destinationRules = new ArrayList<>();
        private final List<GenericKubernetesResource> grpcRoutes = new ArrayList<>();
        private final List<GenericKubernetesResource> tcpRoutes = new ArrayList<>();
        private final List<GenericKubernetesResource> requestAuthentications = new ArrayList<>();
        private final List<ConfigMap> configMaps = new ArrayList<>();

        /** Adds an object of a used kind; returns false (and ignores it) for any other. */
        public boolean add(HasMetadata o) {
            switch (o) {
                case Namespace n -> namespaces.add(n);
                case Pod p -> pods.add(p);
                case Service s -> services.add(s);
                case EndpointSlice e -> endpointSlices.add(e);
                // The mesh configuration only (MeshConfig): other ConfigMaps are no input.
                case ConfigMap c when MeshConfig.CONFIG_MAP.equals(c.getMetadata().getName()) -> configMaps.add(c);
                case GenericKubernetesResource g -> {
                    KubeKind kind = KubeKind.of(g.getApiVersion(), g.getKind()).orElse(null);
                    if (kind == null) {
                        return false;
                    }
                    switch (kind) {
                        case AUTHORIZATION_POLICY -> authorizationPolicies.add(g);
                        case PEER_AUTHENTICATION -> peerAuthentications.add(g);
                        case GATEWAY -> gateways.add(g);
                        case HTTP_ROUTE -> httpRoutes.add(g);
                        case SERVICE_ENTRY -> serviceEntries.add(g);
                        case DESTINATION_RULE -> destinationRules.add(g);
                        case GRPC_ROUTE -> grpcRoutes.add(g);
                        case TCP_ROUTE -> tcpRoutes.add(g);
                        case REQUEST_AUTHENTICATION -> requestAuthentications.add(g);
                        default -> {
                            return false;
                        }
                    }
                }
                default -> {
                    return false;
                }
            }
            return true;
        }

        public Builder addAll(Collection<? extends HasMetadata> objects) {
            objects.forEach(this::add);
            return this;
        }

        public MeshInput build() {
            return new MeshInput(namespaces, pods, services, endpointSlices, authorizationPolicies,
                    peerAuthentications, gateways, httpRoutes, serviceEntries, destinationRules, grpcRoutes, tcpRoutes,
                    requestAuthentications, configMaps);
        }
    }
}
