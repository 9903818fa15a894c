package dev.ambient.xds.waypoint;

import io.fabric8.kubernetes.api.model.DeletionPropagation;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Brings one Gateway's objects to what they should be. Blocking Kubernetes calls: runs only on
 * the controller's own thread. Reads the objects fresh from the API server (not from a cache), so
 * that what it just wrote is never mistaken for missing.
 */
final class WaypointReconciler {

    /** What a reconcile did, for metrics. */
    enum Outcome { PROGRAMMED, PENDING, REJECTED, IGNORED, REMOVED, UNCHANGED }

    /** The kinds the controller manages, in the order they are created. */
    static final List<Class<? extends HasMetadata>> MANAGED_KINDS = List.of(ServiceAccount.class, Deployment.class,
            Service.class, HorizontalPodAutoscaler.class, PodDisruptionBudget.class);

    private final KubernetesClient client;
    private final WaypointConfig config;
    private final DecisionLog log;

    WaypointReconciler(KubernetesClient client, WaypointConfig config, DecisionLog log) {
        this.client = client;
        this.config = config;
        this.log = log;
    }

    /**
     * @param key namespace/name of the Gateway
     * @param cached the Gateway as the informer has it, or null when it has none
     * @param managedMayExist whether objects of ours may exist for that key (from the caches)
     */
    Outcome reconcile(String key, GenericKubernetesResource cached, boolean managedMayExist) {
        String namespace = key.substring(0, key.indexOf('/'));
        String name = key.substring(key.indexOf('/') + 1);
        GenericKubernetesResource gateway = cached;
        if (gateway == null) {
            // The cache says it is gone; make sure before deleting anything.
            gateway = client.genericKubernetesResources(WaypointGateway.CONTEXT).inNamespace(namespace).withName(name).get();
            if (gateway == null) {
                int n = deleteManaged(key, namespace, name, "its Gateway no longer exists");
                log.forget(key);
                return n > 0 ? Outcome.REMOVED : Outcome.UNCHANGED;
            }
        }
        String gatewayClass = WaypointGateway.gatewayClassName(gateway);
        if (!config.gatewayClass().equals(gatewayClass)) {
            log.ignore(key, "ignored: gatewayClassName is " + gatewayClass + ", not " + config.gatewayClass());
            if (managedMayExist) {
                deleteManaged(key, namespace, name, "gatewayClassName changed to " + gatewayClass);
                return Outcome.REMOVED;
            }
            return Outcome.IGNORED;
        }
        if (WaypointGateway.isBeingDeleted(gateway)) {
            log.decide(key, "the Gateway is being deleted: removing its waypoint");
            deleteManaged(key, namespace, name, "its Gateway is being deleted");
            return Outcome.REMOVED;
        }

        WaypointGateway.Verdict verdict = WaypointGateway.validate(gateway);
        if (verdict instanceof WaypointGateway.Invalid invalid) {
            // Objects made for an earlier, valid version are left running: a typo in an
            // annotation must not take a working waypoint down.
            log.decide(key, "rejected (" + invalid.reason() + "): " + invalid.message());
            writeStatus(key, namespace, name, List.of(
                    GatewayStatus.rejected(invalid.reason(), invalid.message()),
                    GatewayStatus.notProgrammed("Invalid", "the Gateway was not accepted")), List.of());
            return Outcome.REJECTED;
        }
        WaypointGateway.Valid bounds = (WaypointGateway.Valid) verdict;
        WaypointObjects.Desired desired = WaypointObjects.desired(gateway, bounds, config);

        // First read everything, and refuse to take over objects that someone else made.
        List<Pair> pairs = new ArrayList<>();
        List<String> conflicts = new ArrayList<>();
        for (HasMetadata want : desired.all()) {
            HasMetadata have = client.resource(want).get();
            if (have != null && !isOurs(have, name)) {
                conflicts.add(want.getKind() + " " + key);
            }
            pairs.add(new Pair(want, have));
        }
        if (!conflicts.isEmpty()) {
            String message = String.join(", ", conflicts) + " already exist(s) and is not managed by this controller "
                    + "(no label " + WaypointObjects.MANAGED_LABEL + "=" + WaypointObjects.MANAGED_VALUE + ")";
            log.decide(key, "rejected (Invalid): " + message);
            writeStatus(key, namespace, name, List.of(GatewayStatus.rejected("Invalid", message),
                    GatewayStatus.notProgrammed("Invalid", "the Gateway was not accepted")), List.of());
            return Outcome.REJECTED;
        }

        Deployment deployment = null;
        Service service = null;
        for (Pair p : pairs) {
            HasMetadata applied = apply(key, p.desired(), p.existing());
            if (applied instanceof Deployment d) {
                deployment = d;
            } else if (applied instanceof Service s) {
                service = s;
            }
        }
        if (desired.podDisruptionBudget() == null) {
            deleteOne(key, PodDisruptionBudget.class, namespace, name,
                    "fewer than 2 replicas always run (" + WaypointGateway.MIN_REPLICAS_ANNOTATION + "=" + bounds.minReplicas() + ")");
        }

        int available = deployment == null || deployment.getStatus() == null
                || deployment.getStatus().getAvailableReplicas() == null ? 0 : deployment.getStatus().getAvailableReplicas();
        GatewayStatus.Condition programmed = GatewayStatus.programmed(available);
        String clusterIp = service == null || service.getSpec() == null ? null : service.getSpec().getClusterIP();
        log.decide(key, "accepted: waypoint with " + bounds.minReplicas() + ".." + bounds.maxReplicas()
                + " replicas; Programmed=" + (programmed.status() ? "True" : "False") + " (" + programmed.reason() + ")");
        writeStatus(key, namespace, name, List.of(GatewayStatus.accepted(), programmed),
                GatewayStatus.addresses(namespace, name, config.clusterDomain(), clusterIp));
        return programmed.status() ? Outcome.PROGRAMMED : Outcome.PENDING;
    }

    private record Pair(HasMetadata desired, HasMetadata existing) {
    }

    static boolean isOurs(HasMetadata object, String gatewayName) {
        Map<String, String> labels = Objects.requireNonNullElse(object.getMetadata().getLabels(), Map.of());
        return WaypointObjects.MANAGED_VALUE.equals(labels.get(WaypointObjects.MANAGED_LABEL))
                && gatewayName.equals(labels.get(WaypointObjects.GATEWAY_NAME_LABEL));
    }

    private HasMetadata apply(String key, HasMetadata desired, HasMetadata existing) {
        String what = desired.getKind() + " " + desired.getMetadata().getNamespace() + "/" + desired.getMetadata().getName();
        if (existing == null) {
            HasMetadata created = client.resource(desired).create();
            log.action(key, "created " + what);
            return created;
        }
        String drift = Drift.find(desired, existing);
        if (drift == null) {
            return existing;
        }
        keepWhatIsNotOurs(desired, existing);
        HasMetadata updated = client.resource(desired).update();
        log.action(key, "updated " + what + ": it drifted at " + drift);
        return updated;
    }

    /** Fields an update must not reset: set by the API server, the autoscaler or other controllers. */
    private static void keepWhatIsNotOurs(HasMetadata desired, HasMetadata existing) {
        var meta = desired.getMetadata();
        var old = existing.getMetadata();
        meta.setResourceVersion(old.getResourceVersion());
        meta.setFinalizers(old.getFinalizers());
        Map<String, String> labels = new LinkedHashMap<>(Objects.requireNonNullElse(old.getLabels(), Map.of()));
        labels.putAll(Objects.requireNonNullElse(meta.getLabels(), Map.of()));
        meta.setLabels(labels);
        Map<String, String> annotations = new LinkedHashMap<>(Objects.requireNonNullElse(old.getAnnotations(), Map.of()));
        annotations.putAll(Objects.requireNonNullElse(meta.getAnnotations(), Map.of()));
        meta.setAnnotations(annotations);
        if (desired instanceof Deployment d && existing instanceof Deployment e && e.getSpec() != null) {
            d.getSpec().setReplicas(e.getSpec().getReplicas());
        }
        if (desired instanceof Service s && existing instanceof Service e && e.getSpec() != null) {
            s.getSpec().setClusterIP(e.getSpec().getClusterIP());
            s.getSpec().setClusterIPs(e.getSpec().getClusterIPs());
        }
    }

    /**
     * Deletes every object of ours for that Gateway. The API server would garbage-collect them
     * through their owner reference; the controller deletes them itself too, because a cluster
     * may lag behind (and the mock API server used in tests has no garbage collector).
     */
    int deleteManaged(String key, String namespace, String name, String reason) {
        int deleted = 0;
        for (Class<? extends HasMetadata> kind : MANAGED_KINDS) {
            deleted += deleteOne(key, kind, namespace, name, reason);
        }
        return deleted;
    }

    private int deleteOne(String key, Class<? extends HasMetadata> kind, String namespace, String name, String reason) {
        HasMetadata have = client.resources(kind).inNamespace(namespace).withName(name).get();
        if (have == null || !isOurs(have, name)) {
            return 0;
        }
        try {
            client.resource(have).withPropagationPolicy(DeletionPropagation.BACKGROUND).delete();
        } catch (KubernetesClientException e) {
            if (e.getCode() != 404) {
                throw e;
            }
        }
        log.action(key, "deleted " + have.getKind() + " " + namespace + "/" + name + ": " + reason);
        return 1;
    }

    private void writeStatus(String key, String namespace, String name, List<GatewayStatus.Condition> conditions,
            List<Map<String, String>> addresses) {
        // Fresh copy: the latest resourceVersion and the status as it is now.
        var gateways = client.genericKubernetesResources(WaypointGateway.CONTEXT).inNamespace(namespace);
        GenericKubernetesResource fresh = gateways.withName(name).get();
        if (fresh == null) {
            return;
        }
        Map<String, Object> status = GatewayStatus.build(fresh, conditions, addresses);
        if (GatewayStatus.isCurrent(fresh, status)) {
            return;
        }
        fresh.setAdditionalProperty("status", status);
        gateways.resource(fresh).updateStatus();
        log.action(key, "wrote status: " + summary(conditions) + (addresses.isEmpty() ? "" : ", addresses "
                + addresses.stream().map(a -> a.get("value")).toList()));
    }

    private static String summary(List<GatewayStatus.Condition> conditions) {
        StringBuilder sb = new StringBuilder();
        for (GatewayStatus.Condition c : conditions) {
            if (!sb.isEmpty()) {
                sb.append(", ");
            }
            sb.append(c.type()).append('=').append(c.status() ? "True" : "False").append(" (").append(c.reason()).append(')');
        }
        return sb.toString();
    }
}
