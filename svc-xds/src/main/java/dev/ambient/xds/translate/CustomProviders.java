package dev.ambient.xds.translate;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.ExtAuthzProvider;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * The ext_authz providers of one translation, for AuthorizationPolicy action CUSTOM: read from the
 * mesh configuration ({@link MeshConfig}, whose problems it reports once), and each provider's
 * service resolved to the healthy endpoints of the mesh service it names ("ip:targetPort"), each
 * in the mesh with the SPIFFE id the waypoint's HBONE tunnel to it must verify. A service the mesh does not know (an outside name or an IP) is
 * left for the waypoint to dial by name.
 */
final class CustomProviders {

    private static final Set<String> PROVIDER_KEYS = Set.of("name");

    private final Context ctx;
    private final MeshConfig config;

    CustomProviders(Context ctx) {
        this.ctx = ctx;
        this.config = MeshConfig.of(ctx.input.configMaps(), ctx.config.rootNamespace());
        String where = "ConfigMap/" + ctx.config.rootNamespace() + "/" + MeshConfig.CONFIG_MAP;
        config.problems().forEach(problem -> ctx.problem(where, problem));
    }

    /** {@code spec.provider.name}, required with action CUSTOM. */
    String providerName(Map<String, Object> spec) {
        Map<String, Object> provider = Specs.map(spec.get("provider"), "spec.provider");
        Specs.onlyKeys(provider, "spec.provider", PROVIDER_KEYS);
        String name = Specs.string(provider.get("name"), "spec.provider.name");
        if (name == null || name.isEmpty()) {
            throw new Specs.Invalid("spec.provider.name: required with action CUSTOM");
        }
        return name;
    }

    /** The provider a CUSTOM policy names, resolved; empty (and a problem) when the mesh configuration lacks it. */
    Optional<ExtAuthzProvider> resolve(GenericKubernetesResource policy, Map<String, Object> spec) {
        String name = providerName(spec);
        ExtAuthzProvider p = config.providers().get(name);
        if (p == null) {
            ctx.problem(policy, "spec.provider.name: no ext_authz provider '" + name + "' in the mesh configuration"
                    + " (ConfigMap " + ctx.config.rootNamespace() + "/" + MeshConfig.CONFIG_MAP
                    + ", extensionProviders); the requests its rules match are denied");
            return Optional.empty();
        }
        Service service = meshService(p.getService());
        if (service == null) {
            if (!isIp(p.getService())) {
                ctx.problem(policy, "provider " + name + ": " + p.getService()
                        + " is not a service of the mesh; the waypoint resolves it by DNS");
            }
            return Optional.of(p);
        }
        ExtAuthzProvider.Builder resolved = p.toBuilder().setMeshService(true);
        endpoints(service, p.getPort()).forEach((endpoint, identity) -> {
            resolved.addEndpoints(endpoint);
            if (!identity.isEmpty()) {
                resolved.putHboneIdentities(endpoint, identity);
            }
        });
        return Optional.of(resolved.build());
    }

    /** Istio's forms: "hostname" or "namespace/hostname"; short names are not resolved. */
    private Service meshService(String ref) {
        int slash = ref.indexOf('/');
        String ns = slash < 0 ? null : ref.substring(0, slash);
        String host = ref.substring(slash + 1);
        for (Service s : ctx.translatedServices.values()) {
            if (s.getHostname().equals(host) && (ns == null || s.getNamespace().equals(ns))) {
                return s;
            }
        }
        return null;
    }

    /**
     * "ip:targetPort" of each healthy endpoint, with the SPIFFE id URI its workload proves when it
     * is in the mesh (HBONE), else "": the waypoint must reach mesh workloads through HBONE.
     */
    private Map<String, String> endpoints(Service s, int servicePort) {
        String key = s.getNamespace() + "/" + s.getHostname();
        Map<String, String> out = new TreeMap<>();
        for (Workload w : ctx.translatedWorkloads) {
            PortList ports = w.getServicesMap().get(key);
            if (ports == null || w.getStatus() != WorkloadStatus.HEALTHY || w.getAddressesCount() == 0) {
                continue;
            }
            for (Port port : ports.getPortsList()) {
                if (port.getServicePort() == servicePort) {
                    int target = port.getTargetPort() == 0 ? servicePort : port.getTargetPort();
                    String host;
                    try {
                        host = InetAddress.getByAddress(w.getAddresses(0).toByteArray()).getHostAddress();
                    } catch (UnknownHostException e) {
                        continue; // not 4 or 16 bytes: the workload translation never makes one
                    }
                    out.put((host.contains(":") ? "[" + host + "]" : host) + ":" + target, identity(w));
                }
            }
        }
        return out;
    }

    private String identity(Workload w) {
        if (w.getTunnelProtocol() != TunnelProtocol.HBONE) {
            return "";
        }
        String td = w.getTrustDomain().isEmpty() ? ctx.config.trustDomain() : w.getTrustDomain();
        return new SpiffeId(td, w.getNamespace(), w.getServiceAccount().isEmpty() ? "default" : w.getServiceAccount())
                .uri();
    }

    private static boolean isIp(String s) {
        try {
            InetAddress.ofLiteral(s);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
