package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.xds.source.KubeYaml;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * ServiceEntry as Istio users write it, one row per shape: the services (one per host) and
 * endpoint workloads it becomes, written compactly, and the problem reported for each bad field.
 * Services render as {@code host [addresses] ports resolution external export waypoint}, an
 * auto-allocated address as {@code auto}; workloads as {@code address-or-hostname {service: ports}}.
 */
class ServiceEntryTranslationTest {

    static final String BASE = """
            apiVersion: v1
            kind: Namespace
            metadata: {name: egress, labels: {istio.io/dataplane-mode: ambient}}
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: {name: egress-waypoint, namespace: egress}
            spec:
              gatewayClassName: istio-waypoint
              listeners: [{name: mesh, port: 15008, protocol: HBONE}]
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: {name: waypoint, namespace: istio-egress}
            spec:
              gatewayClassName: istio-waypoint
              listeners: [{name: mesh, port: 15008, protocol: HBONE}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: legacy-1, namespace: egress, labels: {app: legacy}}
            spec: {nodeName: node-a, serviceAccountName: legacy}
            status:
              phase: Running
              podIP: 10.244.9.9
              conditions: [{type: Ready, status: "True"}]
            ---
            """;

    static Arguments row(String name, String entry, String services, String workloads, String problem) {
        return Arguments.of(name, entry, services, workloads, problem);
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                row("DNS, no addresses: auto-allocated, resolved by host name", """
                        spec:
                          hosts: [api.example.com]
                          ports: [{number: 443, name: https, protocol: HTTPS}]
                          resolution: DNS
                        """,
                        "api.example.com [auto] 443/https ENDPOINTS external",
                        "api.example.com {egress/api.example.com: 443->0}", null),
                row("the host is case-insensitive and may end in a dot", """
                        spec:
                          hosts: [API.Example.COM.]
                          ports: [{number: 80, protocol: http}]
                          resolution: DNS
                        """,
                        "api.example.com [auto] 80/http ENDPOINTS external",
                        "api.example.com {egress/api.example.com: 80->0}", null),
                row("STATIC with addresses, endpoints and named endpoint ports", """
                        spec:
                          hosts: [db.legacy.example]
                          addresses: [192.0.2.10]
                          ports: [{number: 5432, name: tcp-pg, protocol: TCP, targetPort: 15432}]
                          resolution: STATIC
                          endpoints:
                          - address: 198.51.100.7
                          - {address: 198.51.100.8, ports: {tcp-pg: 25432}, serviceAccount: db}
                        """,
                        "db.legacy.example [192.0.2.10] 5432->15432/tcp ENDPOINTS external",
                        "198.51.100.7 {egress/db.legacy.example: 5432->0} | 198.51.100.8 {egress/db.legacy.example: 5432->25432}",
                        null),
                row("DNS endpoints by name and by address, two hosts", """
                        spec:
                          hosts: [a.example, b.example]
                          ports: [{number: 80, name: http}]
                          resolution: DNS
                          endpoints: [{address: origin.example.net}, {address: 203.0.113.5}]
                        """,
                        "a.example [auto] 80 ENDPOINTS external | b.example [auto] 80 ENDPOINTS external",
                        "203.0.113.5 {egress/a.example: 80->0, egress/b.example: 80->0} | origin.example.net {egress/a.example: 80->0, egress/b.example: 80->0}",
                        null),
                row("resolution NONE: passthrough, no address allocated, wildcard allowed", """
                        spec:
                          hosts: ["*.wikipedia.org"]
                          ports: [{number: 443, name: tls, protocol: TLS}]
                          resolution: NONE
                        """,
                        "*.wikipedia.org [] 443/tls PASSTHROUGH external", "", null),
                row("resolution defaults to NONE, location to MESH_EXTERNAL", """
                        spec:
                          hosts: [static.example]
                          addresses: [192.0.2.20]
                          ports: [{number: 80}]
                        """,
                        "static.example [192.0.2.20] 80 PASSTHROUGH external", "", null),
                row("MESH_INTERNAL with a workloadSelector: the pods list the host", """
                        spec:
                          hosts: [legacy.internal]
                          ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
                          location: MESH_INTERNAL
                          resolution: STATIC
                          workloadSelector: {labels: {app: legacy}}
                        """,
                        "legacy.internal [auto] 80->8080/http ENDPOINTS internal",
                        "10.244.9.9 {egress/legacy.internal: 80->8080}", null),
                row("exportTo '.' is the entry's own namespace", """
                        spec:
                          hosts: [private.example]
                          ports: [{number: 80}]
                          resolution: DNS
                          exportTo: ["."]
                        """,
                        "private.example [auto] 80 ENDPOINTS external export=[egress]",
                        "private.example {egress/private.example: 80->0}", null),
                row("exportTo '*' is everyone, '~' nobody", """
                        spec:
                          hosts: [nobody.example]
                          ports: [{number: 80}]
                          resolution: DNS
                          exportTo: ["~"]
                        """,
                        "nobody.example [auto] 80 ENDPOINTS external export=[~]",
                        "nobody.example {egress/nobody.example: 80->0}", null),
                row("istio.io/use-waypoint sends it through the egress waypoint", """
                        metadata:
                          labels: {istio.io/use-waypoint: egress-waypoint}
                        spec:
                          hosts: [api.example.com]
                          ports: [{number: 80, protocol: HTTP}]
                          resolution: DNS
                        """,
                        "api.example.com [auto] 80/http ENDPOINTS external waypoint=egress-waypoint.egress.svc.cluster.local",
                        "api.example.com {egress/api.example.com: 80->0}", null),
                row("use-waypoint-namespace: the waypoint of an egress namespace, as Istio's egress docs set it up", """
                        metadata:
                          labels: {istio.io/use-waypoint: waypoint, istio.io/use-waypoint-namespace: istio-egress}
                        spec:
                          hosts: [api.example.com]
                          ports: [{number: 80, protocol: HTTP}]
                          resolution: DNS
                        """,
                        "api.example.com [auto] 80/http ENDPOINTS external waypoint=waypoint.istio-egress.svc.cluster.local",
                        "api.example.com {egress/api.example.com: 80->0}", null),
                row("use-waypoint-namespace naming a namespace without that waypoint: reported, no waypoint", """
                        metadata:
                          labels: {istio.io/use-waypoint: egress-waypoint, istio.io/use-waypoint-namespace: istio-egress}
                        spec:
                          hosts: [api.example.com]
                          ports: [{number: 80}]
                          resolution: DNS
                        """,
                        "api.example.com [auto] 80 ENDPOINTS external",
                        "api.example.com {egress/api.example.com: 80->0}",
                        "istio.io/use-waypoint: no waypoint istio-egress/egress-waypoint"),
                row("use-waypoint naming no waypoint: reported, no waypoint", """
                        metadata:
                          labels: {istio.io/use-waypoint: nowhere}
                        spec:
                          hosts: [api.example.com]
                          ports: [{number: 80}]
                          resolution: DNS
                        """,
                        "api.example.com [auto] 80 ENDPOINTS external",
                        "api.example.com {egress/api.example.com: 80->0}", "istio.io/use-waypoint: no waypoint egress/nowhere"),
                // Bad fields: reported with their path; the rest applies where it still means what was written.
                row("a bad host is skipped, the good one stays", """
                        spec:
                          hosts: [good.example, "bad host!"]
                          ports: [{number: 80}]
                          resolution: DNS
                        """,
                        "good.example [auto] 80 ENDPOINTS external",
                        "good.example {egress/good.example: 80->0}", "spec.hosts[1]: not a host name"),
                row("a wildcard cannot be resolved by DNS without endpoints", """
                        spec:
                          hosts: ["*.example.com", ok.example.com]
                          ports: [{number: 80}]
                          resolution: DNS
                        """,
                        "ok.example.com [auto] 80 ENDPOINTS external",
                        "ok.example.com {egress/ok.example.com: 80->0}", "spec.hosts[0]: a wildcard host cannot be resolved"),
                row("no valid host: the entry is skipped", """
                        spec:
                          hosts: ["-nope-"]
                          ports: [{number: 80}]
                        """, "", "", "spec.hosts: at least one valid host is required"),
                row("an address range is not supported", """
                        spec:
                          hosts: [range.example]
                          addresses: [192.0.2.0/24, 192.0.2.30/32]
                          ports: [{number: 80}]
                          resolution: STATIC
                          endpoints: [{address: 192.0.2.31}]
                        """,
                        "range.example [192.0.2.30] 80 ENDPOINTS external",
                        "192.0.2.31 {egress/range.example: 80->0}", "spec.addresses[0]: address ranges are not supported"),
                row("a bad address is skipped", """
                        spec:
                          hosts: [addr.example]
                          addresses: [not-an-ip]
                          ports: [{number: 80}]
                        """,
                        "addr.example [] 80 PASSTHROUGH external", "", "spec.addresses[0]: not an IP address"),
                row("UDP ports are not carried", """
                        spec:
                          hosts: [udp.example]
                          ports: [{number: 53, protocol: UDP}, {number: 80, protocol: HTTP}]
                          resolution: DNS
                        """,
                        "udp.example [auto] 80/http ENDPOINTS external",
                        "udp.example {egress/udp.example: 80->0}", "spec.ports[0].protocol: UDP is not carried"),
                row("an unknown protocol, a bad and a repeated port number", """
                        spec:
                          hosts: [ports.example]
                          ports: [{number: 80, protocol: CARRIER-PIGEON}, {number: 70000}, {number: 81}, {number: 81}]
                          resolution: DNS
                        """,
                        "ports.example [auto] 81 ENDPOINTS external",
                        "ports.example {egress/ports.example: 81->0}", "spec.ports[0].protocol: unknown protocol"),
                row("STATIC endpoints must be addresses", """
                        spec:
                          hosts: [static.example]
                          ports: [{number: 80}]
                          resolution: STATIC
                          endpoints: [{address: origin.example.net}, {address: 192.0.2.40}]
                        """,
                        "static.example [auto] 80 ENDPOINTS external",
                        "192.0.2.40 {egress/static.example: 80->0}", "spec.endpoints[0].address: not an IP address"),
                row("NONE ignores endpoints", """
                        spec:
                          hosts: [none.example]
                          addresses: [192.0.2.50]
                          ports: [{number: 80}]
                          resolution: NONE
                          endpoints: [{address: 192.0.2.51}]
                        """,
                        "none.example [192.0.2.50] 80 PASSTHROUGH external", "", "spec.endpoints: resolution NONE"),
                row("endpoints and a workloadSelector: the selector wins", """
                        spec:
                          hosts: [both.example]
                          ports: [{number: 80}]
                          resolution: STATIC
                          workloadSelector: {labels: {app: legacy}}
                          endpoints: [{address: 192.0.2.60}]
                        """,
                        "both.example [auto] 80 ENDPOINTS external",
                        "10.244.9.9 {egress/both.example: 80->0}", "spec.endpoints: an entry has either endpoints or a workloadSelector"),
                row("an unknown resolution skips the entry", """
                        spec:
                          hosts: [x.example]
                          ports: [{number: 80}]
                          resolution: DYNAMIC_DNS
                        """, "", "", "spec.resolution: must be one of [NONE, STATIC, DNS]"),
                row("an unknown location skips the entry", """
                        spec:
                          hosts: [x.example]
                          location: OUTSIDE
                        """, "", "", "spec.location: must be MESH_EXTERNAL or MESH_INTERNAL"),
                row("an unknown field skips the entry (a typo must not widen exportTo)", """
                        spec:
                          hosts: [x.example]
                          exportto: ["."]
                        """, "", "", "spec.exportto: unknown field"),
                row("an invalid exportTo value leaves the entry seen by nobody", """
                        spec:
                          hosts: [x.example]
                          addresses: [192.0.2.70]
                          ports: [{number: 80}]
                          exportTo: ["Not_A_Namespace"]
                        """,
                        "x.example [192.0.2.70] 80 PASSTHROUGH external export=[~]", "",
                        "spec.exportTo[0]: not a namespace"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void serviceEntries(String name, String entry, String services, String workloads, String problem) throws Exception {
        String metadata = "metadata: {name: se, namespace: egress}\n";
        String body = entry;
        if (entry.startsWith("metadata:")) {
            int specAt = entry.indexOf("spec:");
            metadata = "metadata:\n  name: se\n  namespace: egress\n" + entry.substring("metadata:\n".length(), specAt);
            body = entry.substring(specAt);
        }
        String yaml = BASE + "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n" + metadata + body;
        Translation t = new MeshTranslator().translate(MeshInput.builder().addAll(KubeYaml.parse(yaml, k -> {
        })).build(), 1);

        assertEquals(services, services(t), name + ": services; problems " + t.problems());
        assertEquals(workloads, workloads(t), name + ": workloads");
        List<Problem> problems = t.problems().stream().filter(p -> p.resource().startsWith("ServiceEntry/")).toList();
        if (problem == null) {
            assertTrue(problems.isEmpty(), "no problem expected: " + problems);
        } else {
            assertTrue(problems.stream().anyMatch(p -> p.reason().contains(problem)
                    && p.resource().equals("ServiceEntry/egress/se")), problems.toString());
        }
    }

    static String services(Translation t) {
        List<String> out = new ArrayList<>();
        for (var e : t.snapshot().resources(ResourceTypes.SERVICE).values()) {
            Service s = (Service) e.resource();
            if (s.getHostname().endsWith(".svc.cluster.local")) {
                continue; // Kubernetes Services of the base
            }
            String addresses = s.getAddressesList().stream().map(a -> address(a.getAddress()))
                    .collect(Collectors.joining(", ", "[", "]"));
            String ports = s.getPortsList().stream().map(ServiceEntryTranslationTest::port)
                    .collect(Collectors.joining(","));
            out.add(s.getHostname() + " " + addresses + " " + ports + " " + s.getResolution()
                    + (s.getMeshExternal() ? " external" : " internal")
                    + (s.getExportToCount() == 0 ? "" : " export=" + s.getExportToList())
                    + (s.hasWaypoint() ? " waypoint=" + s.getWaypoint().getHostname().getHostname() : ""));
        }
        out.sort(null);
        return String.join(" | ", out);
    }

    static String workloads(Translation t) {
        List<String> out = new ArrayList<>();
        for (var e : t.snapshot().resources(ResourceTypes.WORKLOAD).values()) {
            Workload w = (Workload) e.resource();
            String where = w.getHostname().isEmpty() ? address(w.getAddresses(0)) : w.getHostname();
            var services = w.getServicesMap().entrySet().stream()
                    .filter(s -> !s.getKey().endsWith(".svc.cluster.local"))
                    .sorted(Map.Entry.comparingByKey())
                    .map(s -> s.getKey() + ": " + s.getValue().getPortsList().stream()
                            .map(p -> p.getServicePort() + "->" + p.getTargetPort()).collect(Collectors.joining(",")))
                    .collect(Collectors.joining(", ", "{", "}"));
            if (!services.equals("{}")) {
                out.add(where + " " + services);
            }
        }
        out.sort(Comparator.naturalOrder());
        return String.join(" | ", out);
    }

    static String port(Port p) {
        return p.getServicePort() + (p.getTargetPort() == 0 ? "" : "->" + p.getTargetPort())
                + (p.getAppProtocol().isEmpty() ? "" : "/" + p.getAppProtocol());
    }

    static String address(ByteString raw) {
        byte[] b = raw.toByteArray();
        if (AutoAllocation.offsetInRange(b) >= 0) {
            return "auto";
        }
        try {
            return InetAddress.getByAddress(b).getHostAddress();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------------------- allocation

    static Map<String, byte[]> allocation(List<AutoAllocation.Request> requests) {
        return AutoAllocation.allocate(requests, Set.of());
    }

    @Test
    void allocatedAddressesAreStableAcrossOrderAndKeptByTheOlderOnACollision() {
        var a = new AutoAllocation.Request("egress", "a.example", "2026-01-01T00:00:00Z");
        var b = new AutoAllocation.Request("egress", "b.example", "2026-01-02T00:00:00Z");
        var first = allocation(List.of(a, b));
        var reversed = allocation(List.of(b, a));
        assertEquals(hex(first), hex(reversed), "the same input, in any order, gives the same addresses");
        assertNotEquals(hex(first.get(a.key())), hex(first.get(b.key())));
        assertEquals(240, first.get(a.key())[0] & 0xff);
        assertEquals(240, first.get(a.key())[1] & 0xff);

        // b's place taken: the older a keeps its own, b moves to the next free one.
        int aSlot = AutoAllocation.offsetInRange(first.get(a.key()));
        int bSlot = AutoAllocation.offsetInRange(first.get(b.key()));
        var withCollision = AutoAllocation.allocate(List.of(b, a), Set.of(bSlot));
        assertEquals(aSlot, AutoAllocation.offsetInRange(withCollision.get(a.key())));
        assertEquals(bSlot == 65534 ? 1 : bSlot + 1 == aSlot ? bSlot + 2 : bSlot + 1,
                AutoAllocation.offsetInRange(withCollision.get(b.key())));

        // A new entry never moves an existing one.
        var c = new AutoAllocation.Request("other", "c.example", "2026-03-01T00:00:00Z");
        var grown = allocation(List.of(c, a, b));
        assertEquals(hex(first.get(a.key())), hex(grown.get(a.key())));
        assertEquals(hex(first.get(b.key())), hex(grown.get(b.key())));
    }

    @Test
    void everyReplicaAndRestartAgreesAndExplicitAddressesInTheRangeAreNotHandedOut() throws Exception {
        String yaml = BASE + """
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: api, namespace: egress}
                spec: {hosts: [api.example.com, www.example.com], ports: [{number: 80}], resolution: DNS}
                """;
        var objects = KubeYaml.parse(yaml, k -> {
        });
        Translation one = new MeshTranslator().translate(MeshInput.builder().addAll(objects).build(), 1);
        Translation two = new MeshTranslator().translate(MeshInput.builder().addAll(objects).build(), 7);
        assertEquals(one.snapshot().resources(ResourceTypes.SERVICE).get("egress/api.example.com").resource(),
                two.snapshot().resources(ResourceTypes.SERVICE).get("egress/api.example.com").resource());
        Service api = (Service) one.snapshot().resources(ResourceTypes.SERVICE).get("egress/api.example.com").resource();
        String taken = InetAddress.getByAddress(api.getAddresses(0).getAddress().toByteArray()).getHostAddress();

        // Someone writes that address explicitly: the auto-allocated host moves, the explicit one keeps it.
        String explicit = yaml + """
                ---
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: pinned, namespace: egress}
                spec: {hosts: [pinned.example], addresses: [%s], ports: [{number: 80}], resolution: STATIC}
                """.formatted(taken);
        Translation three = new MeshTranslator().translate(MeshInput.builder().addAll(KubeYaml.parse(explicit, k -> {
        })).build(), 1);
        Service moved = (Service) three.snapshot().resources(ResourceTypes.SERVICE).get("egress/api.example.com")
                .resource();
        assertNotEquals(api.getAddresses(0), moved.getAddresses(0));
        assertTrue(three.problems().isEmpty(), three.problems().toString());
    }

    static Object hex(Object o) {
        if (o instanceof byte[] b) {
            return java.util.HexFormat.of().formatHex(b);
        }
        if (o instanceof Map<?, ?> m) {
            return m.entrySet().stream().collect(Collectors.toMap(e -> e.getKey(), e -> hex(e.getValue())));
        }
        return o;
    }
}
