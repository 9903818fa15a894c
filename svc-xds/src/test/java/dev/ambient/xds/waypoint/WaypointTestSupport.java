package dev.ambient.xds.waypoint;

import static org.junit.jupiter.api.Assertions.fail;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;
import java.util.function.Supplier;

/** Loading Istio-style YAML into the mock API server, and waiting for the controller. */
final class WaypointTestSupport {

    static final Duration TIMEOUT = Duration.ofSeconds(20);

    private WaypointTestSupport() {
    }

    /** Registers our CRD (k8s/crds) in the mock server, so Gateways get a status subresource. */
    static void installGatewayCrd(KubernetesClient client) {
        Path crd = Path.of("..", "k8s", "crds", "gateways.gateway.networking.k8s.io.yaml");
        try (InputStream in = Files.newInputStream(crd)) {
            CustomResourceDefinition def = client.getKubernetesSerialization().unmarshal(in, CustomResourceDefinition.class);
            if (client.apiextensions().v1().customResourceDefinitions().withName(def.getMetadata().getName()).get() == null) {
                client.apiextensions().v1().customResourceDefinitions().resource(def).create();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static GenericKubernetesResource load(KubernetesClient client, String resource) {
        try (InputStream in = WaypointTestSupport.class.getResourceAsStream("/waypoint/" + resource)) {
            Objects.requireNonNull(in, resource);
            return client.getKubernetesSerialization().unmarshal(in, GenericKubernetesResource.class);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static GenericKubernetesResource create(KubernetesClient client, String resource) {
        GenericKubernetesResource gw = load(client, resource);
        return client.genericKubernetesResources(WaypointGateway.CONTEXT)
                .inNamespace(gw.getMetadata().getNamespace()).resource(gw).create();
    }

    /** The Gateway of that file, created in another namespace. */
    static GenericKubernetesResource createIn(KubernetesClient client, String resource, String namespace) {
        GenericKubernetesResource gw = load(client, resource);
        gw.getMetadata().setNamespace(namespace);
        return client.genericKubernetesResources(WaypointGateway.CONTEXT).inNamespace(namespace).resource(gw).create();
    }

    static GenericKubernetesResource gateway(KubernetesClient client, String namespace, String name) {
        return client.genericKubernetesResources(WaypointGateway.CONTEXT).inNamespace(namespace).withName(name).get();
    }

    static <T> T await(String what, Supplier<T> get, Predicate<T> done) {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        T last = null;
        while (System.nanoTime() < deadline) {
            last = get.get();
            if (last != null && done.test(last)) {
                return last;
            }
            sleep(100);
        }
        return fail("timed out waiting for " + what + "; last seen: " + last);
    }

    static <T> T await(String what, Supplier<T> get) {
        return await(what, get, x -> true);
    }

    static void awaitGone(String what, Supplier<?> get) {
        await(what + " to be gone", () -> get.get() == null ? Boolean.TRUE : null);
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The condition of that type in a Gateway's status, or null. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> condition(GenericKubernetesResource gw, String type) {
        if (gw == null || !(gw.getAdditionalProperties().get("status") instanceof Map<?, ?> status)
                || !(status.get("conditions") instanceof List<?> conditions)) {
            return null;
        }
        return conditions.stream().filter(c -> c instanceof Map<?, ?> m && type.equals(m.get("type")))
                .map(c -> (Map<String, Object>) c).findFirst().orElse(null);
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> addresses(GenericKubernetesResource gw) {
        if (gw == null || !(gw.getAdditionalProperties().get("status") instanceof Map<?, ?> status)
                || !(status.get("addresses") instanceof List<?> addresses)) {
            return List.of();
        }
        return (List<Map<String, Object>>) addresses;
    }
}
