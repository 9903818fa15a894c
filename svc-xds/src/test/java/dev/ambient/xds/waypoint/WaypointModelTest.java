package dev.ambient.xds.waypoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.InputStream;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The pure parts: validation, the desired objects, drift detection, status. No API server. */
class WaypointModelTest {

    static final KubernetesSerialization SERIALIZATION = new KubernetesSerialization();

    static final WaypointConfig CONFIG = new WaypointConfig() {
        public boolean enabled() { return true; }
        public String image() { return "ambient-mesh/waypoint:0.1.0"; }
        public String imagePullPolicy() { return "IfNotPresent"; }
        public String gatewayClass() { return "istio-waypoint"; }
        public boolean leaderElection() { return false; }
        public Duration resyncPeriod() { return Duration.ofSeconds(60); }
        public Duration retryPeriod() { return Duration.ofSeconds(30); }
        public String clusterDomain() { return "cluster.local"; }
    };

    static GenericKubernetesResource load(String resource) throws Exception {
        try (InputStream in = WaypointModelTest.class.getResourceAsStream("/waypoint/" + resource)) {
            GenericKubernetesResource gw = SERIALIZATION.unmarshal(in, GenericKubernetesResource.class);
            gw.getMetadata().setUid("0000-1111");
            gw.getMetadata().setGeneration(3L);
            return gw;
        }
    }

    @Test
    void istioctlOutputIsAValidWaypoint() throws Exception {
        GenericKubernetesResource gw = load("waypoint-gateway.yaml");
        assertEquals("istio-waypoint", WaypointGateway.gatewayClassName(gw));
        assertEquals(new WaypointGateway.Valid(1, 5), WaypointGateway.validate(gw));
        assertEquals(new WaypointGateway.Valid(2, 4), WaypointGateway.validate(load("scaled-waypoint-gateway.yaml")));
    }

    @Test
    void badGatewaysAreRejectedWithAReason() throws Exception {
        assertEquals("Invalid", ((WaypointGateway.Invalid) WaypointGateway.validate(load("bad-name-gateway.yaml"))).reason());
        assertEquals("ListenersNotValid",
                ((WaypointGateway.Invalid) WaypointGateway.validate(load("no-listeners-gateway.yaml"))).reason());
        GenericKubernetesResource http = load("waypoint-gateway.yaml");
        http.setAdditionalProperty("spec", Map.of("gatewayClassName", "istio-waypoint",
                "listeners", List.of(Map.of("name", "http", "port", 80, "protocol", "HTTP"))));
        assertInstanceOf(WaypointGateway.Invalid.class, WaypointGateway.validate(http));
        GenericKubernetesResource notANumber = load("waypoint-gateway.yaml");
        notANumber.getMetadata().setAnnotations(Map.of(WaypointGateway.MAX_REPLICAS_ANNOTATION, "lots"));
        assertEquals("Invalid", ((WaypointGateway.Invalid) WaypointGateway.validate(notANumber)).reason());
        GenericKubernetesResource inverted = load("waypoint-gateway.yaml");
        inverted.getMetadata().setAnnotations(Map.of(WaypointGateway.MIN_REPLICAS_ANNOTATION, "3",
                WaypointGateway.MAX_REPLICAS_ANNOTATION, "2"));
        assertInstanceOf(WaypointGateway.Invalid.class, WaypointGateway.validate(inverted));
        GenericKubernetesResource longName = load("waypoint-gateway.yaml");
        longName.getMetadata().setName("w".repeat(64));
        assertInstanceOf(WaypointGateway.Invalid.class, WaypointGateway.validate(longName));
        // a min above the default max raises the default max
        GenericKubernetesResource big = load("waypoint-gateway.yaml");
        big.getMetadata().setAnnotations(Map.of(WaypointGateway.MIN_REPLICAS_ANNOTATION, "7"));
        assertEquals(new WaypointGateway.Valid(7, 7), WaypointGateway.validate(big));
    }

    @Test
    void desiredObjectsMatchThemselvesAndDriftIsFound() throws Exception {
        GenericKubernetesResource gw = load("waypoint-gateway.yaml");
        var desired = WaypointObjects.desired(gw, new WaypointGateway.Valid(1, 5), CONFIG);
        assertEquals(4, desired.all().size());
        assertNull(desired.podDisruptionBudget());
        Deployment d = desired.deployment();
        assertNull(Drift.find(d, d));

        // What an API server adds does not count as drift...
        Deployment defaulted = new DeploymentBuilder(d).editSpec().withReplicas(3).withRevisionHistoryLimit(10)
                .editTemplate().editSpec().withDnsPolicy("ClusterFirst").editFirstContainer()
                .withTerminationMessagePath("/dev/termination-log").endContainer().endSpec().endTemplate().endSpec()
                .editMetadata().addToAnnotations("deployment.kubernetes.io/revision", "1").endMetadata()
                .withNewStatus().withAvailableReplicas(3).endStatus().build();
        assertNull(Drift.find(d, defaulted));
        // ... what someone changed does.
        Deployment edited = new DeploymentBuilder(d).editSpec().editTemplate().editSpec().editFirstContainer()
                .editResources().addToRequests("cpu", new Quantity("2")).endResources().endContainer().endSpec().endTemplate()
                .endSpec().build();
        assertEquals("spec.template.spec.containers[0].resources.requests.cpu", Drift.find(d, edited));
        Deployment relabelled = new DeploymentBuilder(d).editMetadata().removeFromLabels("gateway.istio.io/managed")
                .endMetadata().build();
        assertEquals("metadata.labels.gateway.istio.io/managed", Drift.find(d, relabelled));
        var svc = desired.service();
        assertNotNull(Drift.find(svc, new ServiceBuilder(svc).editSpec().editFirstPort().withPort(1).endPort().endSpec().build()));
        assertNull(Drift.find(svc, new ServiceBuilder(svc).editSpec().withClusterIP("10.0.0.1").endSpec().build()));
    }

    @Test
    void statusKeepsTransitionTimesWhenNothingChanged() throws Exception {
        GenericKubernetesResource gw = load("waypoint-gateway.yaml");
        var conditions = List.of(GatewayStatus.accepted(), GatewayStatus.programmed(0));
        var addresses = GatewayStatus.addresses("bookinfo", "waypoint", "cluster.local", "");
        Map<String, Object> first = GatewayStatus.build(gw, conditions, addresses);
        gw.setAdditionalProperty("status", SERIALIZATION.convertValue(first, Map.class));
        Thread.sleep(1100);
        Map<String, Object> again = GatewayStatus.build(gw, conditions, addresses);
        assertEquals(first, again);
        assertEquals(true, GatewayStatus.isCurrent(gw, again));
        Map<String, Object> programmed = GatewayStatus.build(gw, List.of(GatewayStatus.accepted(), GatewayStatus.programmed(1)),
                addresses);
        assertEquals(false, GatewayStatus.isCurrent(gw, programmed));
    }
}
