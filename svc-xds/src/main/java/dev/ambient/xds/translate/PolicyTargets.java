package dev.ambient.xds.translate;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The {@code targetRef}/{@code targetRefs} of an Istio security policy (AuthorizationPolicy,
 * RequestAuthentication) as waypoint targets: "Gateway/ns/name" for a waypoint Gateway,
 * "Service/ns/hostname" for a Service or each host of a ServiceEntry. A reference to something
 * missing, of another namespace or of an unsupported kind is reported and left out.
 */
final class PolicyTargets {

    private static final Set<String> TARGET_REF_KEYS = Set.of("group", "kind", "name", "namespace");

    private PolicyTargets() {
    }

    static boolean targeted(Map<String, Object> spec) {
        return spec.containsKey("targetRef") || spec.containsKey("targetRefs");
    }

    /** The targets; throws when none is left, so the policy is skipped. */
    static Set<String> resolve(Context ctx, GenericKubernetesResource p, Map<String, Object> spec) {
        String ns = Specs.namespace(p);
        List<Map<String, Object>> refs = new ArrayList<>(Specs.maps(spec.get("targetRefs"), "spec.targetRefs"));
        if (spec.get("targetRef") != null) {
            refs.add(Specs.map(spec.get("targetRef"), "spec.targetRef"));
        }
        Set<String> targets = new TreeSet<>();
        for (int i = 0; i < refs.size(); i++) {
            String at = "spec.targetRefs[" + i + "]";
            Map<String, Object> ref = refs.get(i);
            Specs.onlyKeys(ref, at, TARGET_REF_KEYS);
            String kind = Specs.string(ref.get("kind"), at + ".kind");
            String group = Specs.string(ref.get("group"), at + ".group");
            String name = Specs.string(ref.get("name"), at + ".name");
            String refNs = Specs.string(ref.get("namespace"), at + ".namespace");
            if (name == null || kind == null) {
                throw new Specs.Invalid(at + ": kind and name are required");
            }
            if (refNs != null && !refNs.isEmpty() && !refNs.equals(ns)) {
                ctx.problem(p, at + ": a policy can only target resources of its own namespace");
                continue;
            }
            if (kind.equals("Gateway") && (group == null || group.equals("gateway.networking.k8s.io"))) {
                GenericKubernetesResource gw = ctx.gateways.get(ns + "/" + name);
                if (gw == null) {
                    ctx.problem(p, at + ": Gateway " + ns + "/" + name + " does not exist");
                } else if (!ctx.isWaypoint(gw)) {
                    ctx.problem(p, at + ": Gateway " + ns + "/" + name + " is not a waypoint (gatewayClassName "
                            + ctx.config.waypointClass() + "); not enforced");
                } else {
                    targets.add("Gateway/" + ns + "/" + name);
                }
            } else if (kind.equals("Service") && (group == null || group.isEmpty() || group.equals("core"))) {
                var svc = ctx.translatedServices.get(ns + "/" + name);
                if (svc == null) {
                    ctx.problem(p, at + ": Service " + ns + "/" + name + " does not exist");
                } else {
                    if (!svc.hasWaypoint()) {
                        ctx.problem(p, at + ": Service " + ns + "/" + name
                                + " has no waypoint; the policy applies once it has one");
                    }
                    targets.add("Service/" + ns + "/" + svc.getHostname());
                }
            } else if (kind.equals("ServiceEntry") && "networking.istio.io".equals(group)) {
                List<dev.ambient.proto.workload.Service> hosts = ctx.entryServices(ns, name);
                if (hosts.isEmpty()) {
                    ctx.problem(p, at + ": ServiceEntry " + ns + "/" + name + " does not exist (or has no valid host)");
                }
                for (var svc : hosts) {
                    if (!svc.hasWaypoint()) {
                        ctx.problem(p, at + ": ServiceEntry " + ns + "/" + name + " host " + svc.getHostname()
                                + " has no waypoint; the policy applies once it has one");
                    }
                    targets.add("Service/" + ns + "/" + svc.getHostname());
                }
            } else {
                ctx.problem(p, at + ": target kind " + (group == null ? "" : group + "/") + kind + " is not supported");
            }
        }
        if (targets.isEmpty()) {
            throw new Specs.Invalid("spec.targetRefs: no target exists; policy skipped");
        }
        return targets;
    }
}
