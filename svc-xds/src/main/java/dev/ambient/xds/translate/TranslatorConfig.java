package dev.ambient.xds.translate;

import java.util.Objects;

/**
 * Mesh-wide settings of the translation.
 *
 * @param clusterId the cluster id in workload uids ({@code "<cluster>//Pod/<ns>/<name>"}); Istio uses "Kubernetes"
 * @param trustDomain SPIFFE trust domain of workloads
 * @param domainSuffix cluster DNS suffix of service hostnames ({@code name.ns.svc.<suffix>})
 * @param rootNamespace the mesh root namespace: policies there without selector are GLOBAL
 * @param waypointClass the gatewayClassName that marks a Gateway as a waypoint
 */
public record TranslatorConfig(String clusterId, String trustDomain, String domainSuffix, String rootNamespace,
        String waypointClass) {

    public static final TranslatorConfig DEFAULT =
            new TranslatorConfig("Kubernetes", "cluster.local", "cluster.local", "istio-system", "istio-waypoint");

    public TranslatorConfig {
        Objects.requireNonNull(clusterId, "clusterId");
        Objects.requireNonNull(trustDomain, "trustDomain");
        Objects.requireNonNull(domainSuffix, "domainSuffix");
        Objects.requireNonNull(rootNamespace, "rootNamespace");
        Objects.requireNonNull(waypointClass, "waypointClass");
    }

    /** {@code name.namespace.svc.<domainSuffix>}. */
    public String serviceHostname(String name, String namespace) {
        return name + "." + namespace + ".svc." + domainSuffix;
    }
}
