package dev.ambient.ztunnel.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.PeerAuthentication.Mode;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import java.net.InetAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

class StateSnapshotTest {

    private final StateSnapshot full = LocalConfigParserTest.full();

    static InetAddress ip(String s) {
        return Addresses.parseLiteral(s);
    }

    private Workload uid(String name) {
        return full.workloadByUid("cluster1//Pod/default/" + name).orElseThrow();
    }

    private Service echo() {
        return full.serviceByHostname("default", "echo.default.svc.cluster.local").orElseThrow();
    }

    private static List<String> names(List<?> items) {
        return items.stream().map(o -> switch (o) {
            case Workload w -> w.getName();
            case Authorization a -> a.getName();
            default -> o.toString();
        }).toList();
    }

    @Test
    void looksUpWorkloadsByAddressAndUid() throws Exception {
        assertEquals("sleep-1", full.workloadByAddress(ip("127.0.10.1")).orElseThrow().getName());
        assertEquals("sleep-1", full.workloadByAddress(ip("fd00::10:1")).orElseThrow().getName());
        assertEquals("sleep-1", full.workloadByAddress(ip("::ffff:127.0.10.1")).orElseThrow().getName(),
                "IPv4-mapped form finds the IPv4 workload");
        assertEquals("sleep-1", full.workloadByAddress(InetAddress.getByAddress("some-host",
                ip("127.0.10.1").getAddress())).orElseThrow().getName(), "a host name does not matter");
        assertFalse(full.workloadByAddress(ip("127.0.10.2")).isPresent());
        assertFalse(full.workloadByAddress(ip("127.0.100.1")).isPresent(), "a VIP is not a workload");
        assertEquals("legacy", full.workloadByUid("cluster2//Pod/legacy/legacy").orElseThrow().getName());
        assertFalse(full.workloadByUid("cluster1//Pod/default/nope").isPresent());
    }

    @Test
    void looksUpServicesByVipAndHostname() {
        assertEquals("echo", full.serviceByAddress(ip("127.0.100.1")).orElseThrow().getName());
        assertEquals("echo", full.serviceByAddress(ip("fd00::100:1")).orElseThrow().getName());
        assertFalse(full.serviceByAddress(ip("127.0.20.1")).isPresent(), "a pod IP is not a VIP");
        assertEquals("echo", full.serviceByHostname("default", "echo.default.svc.cluster.local").orElseThrow()
                .getName());
        assertFalse(full.serviceByHostname("other", "echo.default.svc.cluster.local").isPresent());
    }

    @Test
    void healthyEndpointsSkipUnhealthyAndUnrelatedWorkloads() {
        assertEquals(List.of("echo-1", "echo-2"), names(full.healthyEndpoints(echo())));
        Service waypoint = full.serviceByHostname("default", "waypoint.default.svc.cluster.local").orElseThrow();
        assertEquals(List.of(), full.healthyEndpoints(waypoint));
    }

    @Test
    void targetPortPrefersTheWorkloadsOwnMapping() {
        Service echo = echo(); // ports {80: 8080, 9000: 0}
        assertEquals(8080, full.targetPort(uid("echo-1"), echo, 80), "own {80: 8080}");
        assertEquals(8080, full.targetPort(uid("echo-2"), echo, 80), "own {} -> service's 8080");
        assertEquals(9090, full.targetPort(uid("echo-3"), echo, 80), "own {80: 9090} beats the service's");
        assertEquals(9000, full.targetPort(uid("echo-1"), echo, 9000), "target 0 = the service port");
        assertEquals(-1, full.targetPort(uid("echo-1"), echo, 81), "no such port");
        assertEquals(-1, full.targetPort(uid("sleep-1"), echo, 81));
        assertEquals(8080, full.targetPort(uid("sleep-1"), echo, 80), "not an endpoint: service mapping");

        Service bare = Service.newBuilder().setName("s").setNamespace("n").setHostname("s.n")
                .addPorts(Port.newBuilder().setServicePort(80)).build();
        Workload w = Workload.newBuilder().setUid("w").putServices("n/s.n", PortList.newBuilder()
                .addPorts(Port.newBuilder().setServicePort(443).setTargetPort(0))
                .addPorts(Port.newBuilder().setServicePort(80).setTargetPort(0)).build()).build();
        assertEquals(443, full.targetPort(w, bare, 443), "own 0 without a service port: same port");
        assertEquals(80, full.targetPort(w, bare, 80));
        assertEquals(-1, full.targetPort(w, bare, 8443));
    }

    @Test
    void workloadsOnNode() {
        assertEquals(List.of("sleep-1", "echo-1"), names(full.workloadsOnNode("node-a")));
        assertEquals(List.of("echo-2", "echo-3", "legacy"), names(full.workloadsOnNode("node-b")));
        assertEquals(List.of(), full.workloadsOnNode("node-c"));
    }

    @Test
    void policiesForFollowsScopes() {
        // mesh-audit: Global in istio-system; deny-legacy: Namespace default; allow-sleep: selects echo-1
        assertEquals(List.of("mesh-audit", "deny-legacy", "allow-sleep"), names(full.policiesFor(uid("echo-1"))));
        assertEquals(List.of("mesh-audit", "deny-legacy"), names(full.policiesFor(uid("echo-2"))));
        assertEquals(List.of("mesh-audit"),
                names(full.policiesFor(full.workloadByUid("cluster2//Pod/legacy/legacy").orElseThrow())));
    }

    @Test
    void policiesForEdgeCases() {
        Workload inRoot = Workload.newBuilder().setUid("r").setNamespace("istio-system").build();
        Workload inA = Workload.newBuilder().setUid("a1").setNamespace("a").build();
        Workload inB = Workload.newBuilder().setUid("b1").setNamespace("b").build();
        Authorization rootNs = policy("root-ns", "istio-system", Scope.NAMESPACE);
        Authorization globalInA = policy("global-in-a", "a", Scope.GLOBAL);
        Authorization selectsB = policy("selects-b1", "a", Scope.WORKLOAD_SELECTOR).toBuilder()
                .addSelectedWorkloads("b1").build();
        Authorization zGlobal = policy("z", "istio-system", Scope.GLOBAL);
        Authorization aGlobal = policy("a", "istio-system", Scope.GLOBAL);
        StateSnapshot s = StateSnapshot.of(List.of(inRoot, inA, inB),
                List.of(), List.of(rootNs, globalInA, selectsB, zGlobal, aGlobal), List.of());
        assertEquals(List.of("a", "z", "root-ns"), names(s.policiesFor(inRoot)),
                "Namespace scope in the root namespace is not global; groups sorted by name");
        assertEquals(List.of("a", "z", "global-in-a"), names(s.policiesFor(inA)),
                "Global outside the root namespace only covers its namespace");
        assertEquals(List.of("a", "z", "selects-b1"), names(s.policiesFor(inB)),
                "workload selection by uid, whatever the namespace");
    }

    private static Authorization policy(String name, String ns, Scope scope) {
        return Authorization.newBuilder().setName(name).setNamespace(ns).setScope(scope).build();
    }

    private static PeerAuthentication pa(String name, String ns, Scope scope, Mode mode, String... selected) {
        return PeerAuthentication.newBuilder().setName(name).setNamespace(ns).setScope(scope).setMode(mode)
                .addAllSelectedWorkloads(List.of(selected)).build();
    }

    @Test
    void peerAuthenticationPrecedence() {
        Workload w = Workload.newBuilder().setUid("w1").setNamespace("app").build();
        Workload other = Workload.newBuilder().setUid("w2").setNamespace("other").build();
        PeerAuthentication meshStrict = pa("mesh", "istio-system", Scope.GLOBAL, Mode.STRICT);
        PeerAuthentication nsPermissive = pa("ns", "app", Scope.NAMESPACE, Mode.PERMISSIVE);
        PeerAuthentication wlStrict = pa("wl", "app", Scope.WORKLOAD_SELECTOR, Mode.STRICT, "w1");

        assertEquals(Mode.PERMISSIVE, modeOf(w, 80), "default");
        assertEquals(Mode.STRICT, modeOf(w, 80, meshStrict), "global");
        assertEquals(Mode.STRICT, modeOf(other, 80, meshStrict, nsPermissive), "global reaches other namespaces");
        assertEquals(Mode.PERMISSIVE, modeOf(w, 80, meshStrict, nsPermissive), "namespace beats global");
        assertEquals(Mode.STRICT, modeOf(w, 80, meshStrict, nsPermissive, wlStrict), "workload beats namespace");
        assertEquals(Mode.PERMISSIVE, modeOf(other, 80, nsPermissive, wlStrict), "other namespace: default");

        PeerAuthentication wlUnset = pa("wl", "app", Scope.WORKLOAD_SELECTOR, Mode.UNSET, "w1").toBuilder()
                .putPortModes(8080, Mode.DISABLE).build();
        PeerAuthentication nsStrict = pa("ns", "app", Scope.NAMESPACE, Mode.STRICT).toBuilder()
                .putPortModes(9090, Mode.PERMISSIVE).build();
        assertEquals(Mode.DISABLE, modeOf(w, 8080, nsStrict, wlUnset), "port-level override at the workload");
        assertEquals(Mode.STRICT, modeOf(w, 80, nsStrict, wlUnset), "UNSET inherits from the namespace");
        assertEquals(Mode.PERMISSIVE, modeOf(w, 9090, nsStrict), "port-level override at the namespace");
        assertEquals(Mode.STRICT, modeOf(w, 9090, nsStrict, wlStrict),
                "a more specific mode beats a less specific port-level override");
        assertEquals(Mode.STRICT, modeOf(w, 80, meshStrict, pa("ns", "app", Scope.NAMESPACE, Mode.UNSET)),
                "UNSET namespace inherits from global");

        PeerAuthentication globalOutsideRoot = pa("g", "elsewhere", Scope.GLOBAL, Mode.STRICT);
        assertEquals(Mode.PERMISSIVE, modeOf(w, 80, globalOutsideRoot), "Global only from the root namespace");

        PeerAuthentication b = pa("b", "app", Scope.NAMESPACE, Mode.STRICT);
        PeerAuthentication a = pa("a", "app", Scope.NAMESPACE, Mode.DISABLE);
        assertEquals(Mode.DISABLE, modeOf(w, 80, b, a), "two at one level: the first by name");

        StateSnapshot parsed = LocalConfigParserTest.full();
        Workload echo1 = parsed.workloadByUid("cluster1//Pod/default/echo-1").orElseThrow();
        assertEquals(Mode.STRICT, parsed.peerAuthenticationMode(echo1, 8080), "workload port-level");
        assertEquals(Mode.STRICT, parsed.peerAuthenticationMode(echo1, 80), "namespace mode");
        assertEquals(Mode.DISABLE, parsed.peerAuthenticationMode(echo1, 9090), "namespace port-level");
        Workload echo2 = parsed.workloadByUid("cluster1//Pod/default/echo-2").orElseThrow();
        assertEquals(Mode.PERMISSIVE, parsed.peerAuthenticationMode(echo2, 8080), "namespace port-level");
    }

    private static Mode modeOf(Workload w, int port, PeerAuthentication... pas) {
        return StateSnapshot.of(List.of(w), List.of(), List.of(), List.of(pas)).peerAuthenticationMode(w, port);
    }

    @Test
    void ofIsLenientAndDeterministic() {
        Workload a1 = Workload.newBuilder().setUid("u").setName("first").setNamespace("n")
                .addAddresses(Addresses.toBytes(ip("10.0.0.1"))).build();
        Workload a2 = a1.toBuilder().setName("second").build();
        Workload unhealthy = Workload.newBuilder().setUid("x").setName("unhealthy").setNamespace("n")
                .setStatus(WorkloadStatus.UNHEALTHY).addAddresses(Addresses.toBytes(ip("10.0.0.2"))).build();
        Workload healthy = Workload.newBuilder().setUid("y").setName("healthy").setNamespace("n")
                .addAddresses(Addresses.toBytes(ip("10.0.0.2")))
                .addAddresses(com.google.protobuf.ByteString.copyFrom(new byte[] {1, 2, 3})) // malformed: skipped
                .build();
        Service s1 = Service.newBuilder().setName("s").setNamespace("n").setHostname("h")
                .addAddresses(NetworkAddress.newBuilder().setAddress(Addresses.toBytes(ip("10.1.0.1")))).build();
        Service s2 = s1.toBuilder().setName("later").build();
        StateSnapshot s = StateSnapshot.of(List.of(a1, a2, healthy, unhealthy), List.of(s1, s2), List.of(), List.of());
        assertEquals(3, s.workloads().size());
        assertEquals("second", s.workloadByUid("u").orElseThrow().getName(), "same uid: later wins");
        assertEquals("second", s.workloadByAddress(ip("10.0.0.1")).orElseThrow().getName());
        assertEquals("healthy", s.workloadByAddress(ip("10.0.0.2")).orElseThrow().getName(),
                "address clash: healthy wins");
        assertEquals(1, s.services().size());
        assertEquals("later", s.serviceByAddress(ip("10.1.0.1")).orElseThrow().getName());
        assertTrue(StateSnapshot.EMPTY.workloads().isEmpty());
        assertFalse(StateSnapshot.EMPTY.workloadByAddress(ip("10.0.0.1")).isPresent());
        assertEquals(List.of(), StateSnapshot.EMPTY.policiesFor(a1));
        assertEquals(Mode.PERMISSIVE, StateSnapshot.EMPTY.peerAuthenticationMode(a1, 80));
    }
}
