package dev.ambient.xds.waypoint;

import static dev.ambient.xds.waypoint.WaypointTestSupport.addresses;
import static dev.ambient.xds.waypoint.WaypointTestSupport.await;
import static dev.ambient.xds.waypoint.WaypointTestSupport.awaitGone;
import static dev.ambient.xds.waypoint.WaypointTestSupport.condition;
import static dev.ambient.xds.waypoint.WaypointTestSupport.create;
import static dev.ambient.xds.waypoint.WaypointTestSupport.createIn;
import static dev.ambient.xds.waypoint.WaypointTestSupport.gateway;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentStatusBuilder;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The waypoint controller against the fabric8 mock API server (CRUD mode), acting without leader
 * election. Each test uses its own namespace. The mock server has no controllers and no garbage
 * collector: nothing runs, and only the controller itself deletes what it made.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true)
@TestProfile(WaypointControllerTest.Direct.class)
class WaypointControllerTest {

    /** No leader election; quick retries. The resync stays at 60 s, so the tests show event-driven work. */
    public static class Direct implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("xds.waypoint.leader-election", "false", "xds.waypoint.retry-period", "1s");
        }
    }

    @Inject
    KubernetesClient client;

    @Inject
    WaypointController controller;

    @BeforeEach
    void crd() {
        WaypointTestSupport.installGatewayCrd(client);
    }

    @Test
    void aWaypointGatewayGetsItsDeploymentServiceAutoscalerAndServiceAccount() {
        GenericKubernetesResource gw = create(client, "waypoint-gateway.yaml");
        String ns = "bookinfo";
        String name = "waypoint";
        assertTrue(controller.isActive());

        Deployment d = await("Deployment", () -> client.apps().deployments().inNamespace(ns).withName(name).get());
        assertOwnedByGateway(d, gw);
        assertEquals(Map.of(
                "gateway.networking.k8s.io/gateway-name", name,
                "gateway.networking.k8s.io/gateway-class-name", "istio-waypoint",
                "gateway.istio.io/managed", "istio.io-mesh-controller"), d.getMetadata().getLabels());
        assertEquals(Map.of("gateway.networking.k8s.io/gateway-name", name), d.getSpec().getSelector().getMatchLabels());
        assertNull(d.getSpec().getReplicas(), "the autoscaler owns the replica count");
        var pod = d.getSpec().getTemplate();
        assertEquals(name, pod.getMetadata().getLabels().get("gateway.networking.k8s.io/gateway-name"));
        assertEquals("istio.io-mesh-controller", pod.getMetadata().getLabels().get("gateway.istio.io/managed"));
        assertEquals("none", pod.getMetadata().getLabels().get("istio.io/dataplane-mode"),
                "a waypoint speaks HBONE itself and must not be captured by ztunnel (as in Istio)");
        assertEquals(Map.of("prometheus.io/scrape", "true", "prometheus.io/port", "15020", "prometheus.io/path", "/metrics"),
                pod.getMetadata().getAnnotations());
        assertEquals(name, pod.getSpec().getServiceAccountName());
        Container c = pod.getSpec().getContainers().get(0);
        assertEquals("ambient-mesh/waypoint:0.1.0", c.getImage());
        Map<String, Integer> ports = c.getPorts().stream()
                .collect(Collectors.toMap(ContainerPort::getName, ContainerPort::getContainerPort));
        assertEquals(Map.of("hbone", 15008, "metrics", 15020, "health", 15021), ports);
        assertEquals("/healthz/ready", c.getReadinessProbe().getHttpGet().getPath());
        assertEquals(15021, c.getReadinessProbe().getHttpGet().getPort().getIntVal());
        assertEquals("100m", c.getResources().getRequests().get("cpu").toString());
        assertEquals("192Mi", c.getResources().getRequests().get("memory").toString());
        assertEquals("256Mi", c.getResources().getLimits().get("memory").toString());
        Map<String, EnvVar> env = c.getEnv().stream().collect(Collectors.toMap(EnvVar::getName, e -> e));
        assertEquals("bookinfo/waypoint", env.get("WAYPOINT_GATEWAY").getValue());
        assertEquals("metadata.namespace", env.get("POD_NAMESPACE").getValueFrom().getFieldRef().getFieldPath());
        assertEquals(WaypointObjects.JAVA_OPTS, env.get("JAVA_OPTS").getValue());
        assertEquals("2", env.get("MALLOC_ARENA_MAX").getValue());
        assertTrue(c.getSecurityContext().getRunAsNonRoot());
        assertTrue(c.getSecurityContext().getReadOnlyRootFilesystem());

        ServiceAccount sa = await("ServiceAccount", () -> client.serviceAccounts().inNamespace(ns).withName(name).get());
        assertOwnedByGateway(sa, gw);

        Service svc = await("Service", () -> client.services().inNamespace(ns).withName(name).get());
        assertOwnedByGateway(svc, gw);
        assertEquals(1, svc.getSpec().getPorts().size());
        assertEquals("mesh", svc.getSpec().getPorts().get(0).getName());
        assertEquals(15008, svc.getSpec().getPorts().get(0).getPort());
        assertEquals(15008, svc.getSpec().getPorts().get(0).getTargetPort().getIntVal());
        assertEquals(Map.of("gateway.networking.k8s.io/gateway-name", name), svc.getSpec().getSelector());

        HorizontalPodAutoscaler hpa = await("HPA",
                () -> client.autoscaling().v2().horizontalPodAutoscalers().inNamespace(ns).withName(name).get());
        assertOwnedByGateway(hpa, gw);
        assertEquals(1, hpa.getSpec().getMinReplicas());
        assertEquals(5, hpa.getSpec().getMaxReplicas());
        assertEquals("Deployment", hpa.getSpec().getScaleTargetRef().getKind());
        assertEquals("apps/v1", hpa.getSpec().getScaleTargetRef().getApiVersion());
        assertEquals(name, hpa.getSpec().getScaleTargetRef().getName());
        var metric = hpa.getSpec().getMetrics().get(0);
        assertEquals("cpu", metric.getResource().getName());
        assertEquals(80, metric.getResource().getTarget().getAverageUtilization());

        // One replica at least: no PodDisruptionBudget, it would block node drains.
        assertNull(client.resources(PodDisruptionBudget.class).inNamespace(ns).withName(name).get());

        GenericKubernetesResource status = await("status Accepted", () -> gateway(client, ns, name),
                g -> condition(g, "Accepted") != null);
        assertEquals("True", condition(status, "Accepted").get("status"));
        assertEquals("Accepted", condition(status, "Accepted").get("reason"));
        assertEquals("False", condition(status, "Programmed").get("status"));
        assertEquals("Pending", condition(status, "Programmed").get("reason"));
        assertEquals(List.of(Map.of("type", "Hostname", "value", "waypoint.bookinfo.svc.cluster.local")), addresses(status));
    }

    @Test
    void annotationsSetTheReplicaBoundsAndTwoReplicasGetADisruptionBudget() {
        GenericKubernetesResource gw = create(client, "scaled-waypoint-gateway.yaml");
        String ns = "scaled";
        String name = "reviews-waypoint";
        HorizontalPodAutoscaler hpa = await("HPA",
                () -> client.autoscaling().v2().horizontalPodAutoscalers().inNamespace(ns).withName(name).get());
        assertEquals(2, hpa.getSpec().getMinReplicas());
        assertEquals(4, hpa.getSpec().getMaxReplicas());
        PodDisruptionBudget pdb = await("PDB",
                () -> client.resources(PodDisruptionBudget.class).inNamespace(ns).withName(name).get());
        assertOwnedByGateway(pdb, gw);
        assertEquals(1, pdb.getSpec().getMinAvailable().getIntVal());
        assertEquals(Map.of("gateway.networking.k8s.io/gateway-name", name), pdb.getSpec().getSelector().getMatchLabels());

        // Down to one replica: the budget goes.
        GenericKubernetesResource current = gateway(client, ns, name);
        current.getMetadata().getAnnotations().put("autoscaling.ambient.dev/min-replicas", "1");
        client.genericKubernetesResources(WaypointGateway.CONTEXT).inNamespace(ns).resource(current).update();
        awaitGone("PDB", () -> client.resources(PodDisruptionBudget.class).inNamespace(ns).withName(name).get());
        await("HPA min 1", () -> client.autoscaling().v2().horizontalPodAutoscalers().inNamespace(ns).withName(name).get(),
                h -> h.getSpec().getMinReplicas() == 1);
    }

    @Test
    void aGatewayOfAnotherClassIsIgnored() {
        create(client, "ingress-gateway.yaml");
        // A waypoint created after it in the same namespace: once it is done, the ingress Gateway
        // has been seen too (one queue, in order).
        createIn(client, "waypoint-gateway.yaml", "ingress");
        await("waypoint status", () -> gateway(client, "ingress", "waypoint"), g -> condition(g, "Accepted") != null);

        assertNull(client.apps().deployments().inNamespace("ingress").withName("bookinfo-gateway").get());
        assertNull(client.services().inNamespace("ingress").withName("bookinfo-gateway").get());
        assertNull(gateway(client, "ingress", "bookinfo-gateway").getAdditionalProperties().get("status"));
    }

    @Test
    void deletingTheGatewayRemovesEverythingItOwned() {
        GenericKubernetesResource gw = create(client, "scaled-waypoint-gateway.yaml");
        String ns = gw.getMetadata().getNamespace();
        String name = gw.getMetadata().getName();
        await("PDB", () -> client.resources(PodDisruptionBudget.class).inNamespace(ns).withName(name).get());
        await("Deployment", () -> client.apps().deployments().inNamespace(ns).withName(name).get());

        client.genericKubernetesResources(WaypointGateway.CONTEXT).inNamespace(ns).withName(name).delete();

        awaitGone("Deployment", () -> client.apps().deployments().inNamespace(ns).withName(name).get());
        awaitGone("Service", () -> client.services().inNamespace(ns).withName(name).get());
        awaitGone("ServiceAccount", () -> client.serviceAccounts().inNamespace(ns).withName(name).get());
        awaitGone("HPA", () -> client.autoscaling().v2().horizontalPodAutoscalers().inNamespace(ns).withName(name).get());
        awaitGone("PDB", () -> client.resources(PodDisruptionBudget.class).inNamespace(ns).withName(name).get());
    }

    @Test
    void aDeploymentDeletedByHandComesBackAndADriftedServiceIsRepaired() {
        String ns = "handmade";
        String name = "waypoint";
        createIn(client, "waypoint-gateway.yaml", ns);
        Deployment first = await("Deployment", () -> client.apps().deployments().inNamespace(ns).withName(name).get());

        client.apps().deployments().inNamespace(ns).withName(name).delete();
        Deployment again = await("Deployment back", () -> client.apps().deployments().inNamespace(ns).withName(name).get(),
                d -> !d.getMetadata().getUid().equals(first.getMetadata().getUid()));
        assertEquals(first.getSpec().getTemplate(), again.getSpec().getTemplate());

        Service svc = await("Service", () -> client.services().inNamespace(ns).withName(name).get());
        client.services().inNamespace(ns).resource(new ServiceBuilder(svc).editSpec().editFirstPort().withPort(15009)
                .endPort().endSpec().build()).update();
        await("Service repaired", () -> client.services().inNamespace(ns).withName(name).get(),
                s -> s.getSpec().getPorts().get(0).getPort() == 15008);
    }

    @Test
    void statusFollowsTheDeploymentAndTheServiceClusterIp() {
        String ns = "status";
        createIn(client, "waypoint-gateway.yaml", ns);
        Deployment d = await("Deployment", () -> client.apps().deployments().inNamespace(ns).withName("waypoint").get());
        await("Programmed=False", () -> gateway(client, ns, "waypoint"), g -> condition(g, "Programmed") != null);

        // What a kube-controller-manager and kubelet would do: a replica becomes available...
        d.setStatus(new DeploymentStatusBuilder().withReplicas(1).withReadyReplicas(1).withAvailableReplicas(1).build());
        client.apps().deployments().inNamespace(ns).resource(d).updateStatus();
        GenericKubernetesResource programmed = await("Programmed=True", () -> gateway(client, ns, "waypoint"),
                g -> "True".equals(condition(g, "Programmed").get("status")));
        assertEquals("Programmed", condition(programmed, "Programmed").get("reason"));

        // ... and the Service gets its cluster IP.
        Service svc = client.services().inNamespace(ns).withName("waypoint").get();
        svc.getSpec().setClusterIP("10.96.12.34");
        client.services().inNamespace(ns).resource(svc).update();
        GenericKubernetesResource withIp = await("IPAddress", () -> gateway(client, ns, "waypoint"),
                g -> addresses(g).size() == 2);
        assertEquals(List.of(Map.of("type", "Hostname", "value", "waypoint.status.svc.cluster.local"),
                Map.of("type", "IPAddress", "value", "10.96.12.34")), addresses(withIp));
    }

    @Test
    void brokenGatewaysAreRejectedAndTheOthersStillWork() {
        create(client, "bad-name-gateway.yaml");
        create(client, "no-listeners-gateway.yaml");
        createIn(client, "waypoint-gateway.yaml", "broken");

        await("good Deployment", () -> client.apps().deployments().inNamespace("broken").withName("waypoint").get());
        GenericKubernetesResource goodStatus = await("good status", () -> gateway(client, "broken", "waypoint"),
                g -> condition(g, "Accepted") != null);
        assertEquals("True", condition(goodStatus, "Accepted").get("status"));

        GenericKubernetesResource badName = await("bad name status", () -> gateway(client, "broken", "bad.waypoint"),
                g -> condition(g, "Accepted") != null);
        assertEquals("False", condition(badName, "Accepted").get("status"));
        assertEquals("Invalid", condition(badName, "Accepted").get("reason"));
        assertTrue(String.valueOf(condition(badName, "Accepted").get("message")).contains("DNS-1035"));
        assertEquals("False", condition(badName, "Programmed").get("status"));
        assertTrue(addresses(badName).isEmpty());

        GenericKubernetesResource noListeners = await("no listeners status", () -> gateway(client, "broken", "no-listeners"),
                g -> condition(g, "Accepted") != null);
        assertEquals("False", condition(noListeners, "Accepted").get("status"));
        assertEquals("ListenersNotValid", condition(noListeners, "Accepted").get("reason"));

        assertNull(client.apps().deployments().inNamespace("broken").withName("bad.waypoint").get());
        assertNull(client.apps().deployments().inNamespace("broken").withName("no-listeners").get());

        // Fixed, it is accepted.
        GenericKubernetesResource fix = gateway(client, "broken", "no-listeners");
        fix.setAdditionalProperty("spec", Map.of("gatewayClassName", "istio-waypoint",
                "listeners", List.of(Map.of("name", "mesh", "port", 15008, "protocol", "HBONE"))));
        client.genericKubernetesResources(WaypointGateway.CONTEXT).inNamespace("broken").resource(fix).update();
        await("fixed Deployment", () -> client.apps().deployments().inNamespace("broken").withName("no-listeners").get());
        await("fixed status", () -> gateway(client, "broken", "no-listeners"),
                g -> "True".equals(condition(g, "Accepted").get("status")));
    }

    @Test
    void anObjectThatIsNotOursIsNotTakenOver() {
        String ns = "conflict";
        client.services().inNamespace(ns).resource(new ServiceBuilder().withNewMetadata().withName("waypoint")
                .withNamespace(ns).endMetadata().withNewSpec().addNewPort().withPort(80).endPort().endSpec().build()).create();
        createIn(client, "waypoint-gateway.yaml", ns);

        GenericKubernetesResource status = await("status", () -> gateway(client, ns, "waypoint"),
                g -> condition(g, "Accepted") != null);
        assertEquals("False", condition(status, "Accepted").get("status"));
        assertEquals("Invalid", condition(status, "Accepted").get("reason"));
        assertEquals(80, client.services().inNamespace(ns).withName("waypoint").get().getSpec().getPorts().get(0).getPort());
        assertNull(client.apps().deployments().inNamespace(ns).withName("waypoint").get());
    }

    static void assertOwnedByGateway(HasMetadata object, GenericKubernetesResource gateway) {
        List<OwnerReference> refs = object.getMetadata().getOwnerReferences();
        assertEquals(1, refs.size(), object.getKind() + " owner references");
        OwnerReference ref = refs.get(0);
        assertEquals("gateway.networking.k8s.io/v1", ref.getApiVersion());
        assertEquals("Gateway", ref.getKind());
        assertEquals(gateway.getMetadata().getName(), ref.getName());
        assertEquals(gateway.getMetadata().getUid(), ref.getUid());
        assertNotEquals(null, ref.getUid());
        assertTrue(ref.getController());
        assertTrue(ref.getBlockOwnerDeletion());
        assertFalse(object.getMetadata().getLabels().isEmpty());
    }
}
