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
}
