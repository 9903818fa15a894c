package dev.ambient.xds.translate;

import java.util.List;
import java.util.Optional;

/**
 * The Kubernetes kinds the translation reads, with the API coordinates the sources need. The
 * built-in kinds are read as fabric8 model classes, the Istio and Gateway API kinds as
 * {@code GenericKubernetesResource} (their spec read as maps).
 */
public enum KubeKind {
    NAMESPACE("", "v1", "Namespace", "namespaces", false, List.of("v1")),
    POD("", "v1", "Pod", "pods", true, List.of("v1")),
    SERVICE("", "v1", "Service", "services", true, List.of("v1")),
    ENDPOINT_SLICE("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, List.of("v1")),
    /** Only the mesh configuration, ConfigMaps named {@code istio} ({@link MeshConfig}). */
    CONFIG_MAP("", "v1", "ConfigMap", "configmaps", true, List.of("v1")),
    AUTHORIZATION_POLICY("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies", true,
            List.of("v1", "v1beta1")),
    PEER_AUTHENTICATION("security.istio.io", "v1", "PeerAuthentication", "peerauthentications", true,
            List.of("v1", "v1beta1")),
    REQUEST_AUTHENTICATION("security.istio.io", "v1", "RequestAuthentication", "requestauthentications", true,
            List.of("v1", "v1beta1")),
    GATEWAY("gateway.networking.k8s.io", "v1", "Gateway", "gateways", true, List.of("v1", "v1beta1")),
    HTTP_ROUTE("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", true, List.of("v1", "v1beta1")),
    GRPC_ROUTE("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes", true, List.of("v1", "v1alpha2")),
    TCP_ROUTE("gateway.networking.k8s.io", "v1alpha2", "TCPRoute", "tcproutes", true, List.of("v1alpha2")),
    SERVICE_ENTRY("networking.istio.io", "v1", "ServiceEntry", "serviceentries", true,
            List.of("v1", "v1beta1", "v1alpha3")),
    DESTINATION_RULE("networking.istio.io", "v1", "DestinationRule", "destinationrules", true,
            List.of("v1", "v1beta1", "v1alpha3"));

    private final String group;
    private final String version;
    private final String kind;
    private final String plural;
    private final boolean namespaced;
    private final List<String> acceptedVersions;

    KubeKind(String group, String version, String kind, String plural, boolean namespaced,
            List<String> acceptedVersions) {
        this.group = group;
        this.version = version;
        this.kind = kind;
        this.plural = plural;
        this.namespaced = namespaced;
        this.acceptedVersions = acceptedVersions;
    }

    public String group() {
        return group;
    }

    /** The version watched in a cluster. */
    public String version() {
        return version;
    }

    public String kind() {
        return kind;
    }

    public String plural() {
        return plural;
    }

    public boolean namespaced() {
        return namespaced;
    }

    /** True for the kinds read as generic resources (CRDs that may be missing from a cluster). */
    public boolean generic() {
        return !group.isEmpty() && this != ENDPOINT_SLICE;
    }

    /** The kind of an {@code apiVersion}/{@code kind} pair, if the translation uses it. */
    public static Optional<KubeKind> of(String apiVersion, String kind) {
        if (apiVersion == null || kind == null) {
            return Optional.empty();
        }
        int slash = apiVersion.indexOf('/');
        String g = slash < 0 ? "" : apiVersion.substring(0, slash);
        String v = slash < 0 ? apiVersion : apiVersion.substring(slash + 1);
        for (KubeKind k : values()) {
            if (k.kind.equals(kind) && k.group.equals(g) && k.acceptedVersions.contains(v)) {
                return Optional.of(k);
            }
        }
        return Optional.empty();
    }
}
