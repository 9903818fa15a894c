package dev.ambient.waypoint.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The source workload read from the baggage a ztunnel sends with its CONNECT. */
class BaggageTest {

    @Test
    void readsTheKeysAZtunnelSends() {
        var w = Baggage.sourceWorkload("k8s.namespace.name=bench,k8s.pod.name=bench-client-7f9,"
                + "service.name=bench-client,service.version=v1").orElseThrow();
        assertEquals("bench", w.getNamespace());
        assertEquals("bench-client", w.getWorkloadName());
        assertEquals("bench-client-7f9", w.getName());
        assertEquals("v1", w.getCanonicalRevision());
    }

    @Test
    void ignoresPropertiesAndNeedsNamespaceAndService() {
        assertEquals("web", Baggage.sourceWorkload("k8s.namespace.name=ns;p=1, service.name=web")
                .orElseThrow().getWorkloadName());
        assertTrue(Baggage.sourceWorkload("service.name=web").isEmpty());
        assertTrue(Baggage.sourceWorkload("garbage").isEmpty());
        assertTrue(Baggage.sourceWorkload(null).isEmpty());
    }

    @Test
    void namesFromBaggageAreBoundedAndMustBelongToThePeer() throws Exception {
        SourceWorkloads sources = new SourceWorkloads();
        var state = dev.ambient.waypoint.state.WaypointState.EMPTY;
        var client = java.net.InetAddress.ofLiteral("10.44.1.10");
        var demo = new dev.ambient.identity.SpiffeId("cluster.local", "demo", "web");
        java.util.function.Function<String, String> name = baggage -> sources.of(state, client, demo, baggage)
                .map(w -> w.getWorkloadName()).orElse("unknown");
        assertEquals("web", name.apply("k8s.namespace.name=demo,service.name=web"));
        assertEquals("unknown", name.apply("k8s.namespace.name=payments,service.name=web"), "another namespace");
        assertEquals("unknown", name.apply("k8s.namespace.name=demo,service.name=Not_A_Name"), "not a Kubernetes name");
        assertEquals("unknown", name.apply("k8s.namespace.name=demo,service.name=" + "a".repeat(64)), "too long");
        for (int i = 1; i < SourceWorkloads.NAMES_PER_IDENTITY; i++) {
            assertEquals("web-" + i, name.apply("k8s.namespace.name=demo,service.name=web-" + i));
        }
        assertEquals("unknown", name.apply("k8s.namespace.name=demo,service.name=one-too-many"), "over the bound");
        assertEquals("web", name.apply("k8s.namespace.name=demo,service.name=web"), "names seen before stay");
        assertEquals("unknown", sources.of(state, client, null, "k8s.namespace.name=demo,service.name=web")
                .map(w -> w.getWorkloadName()).orElse("unknown"), "no verified peer, no baggage");
    }
}
