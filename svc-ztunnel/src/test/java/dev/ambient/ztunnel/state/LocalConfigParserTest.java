package dev.ambient.ztunnel.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Match;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.Rule;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class LocalConfigParserTest {

    private final LocalConfigParser parser = new LocalConfigParser();

    static String resource(String name) {
        try (InputStream in = LocalConfigParserTest.class.getResourceAsStream("/state/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource state/" + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static StateSnapshot full() {
        try {
            return new LocalConfigParser().parse(resource("full.yaml"));
        } catch (LocalConfigException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    static ByteString bytes(String ip) {
        return Addresses.toBytes(Addresses.parseLiteral(ip));
    }

    @Test
    void parsesTheFullExample() {
        StateSnapshot s = full();
        assertEquals(5, s.workloads().size());
        assertEquals(2, s.services().size());
        assertEquals(3, s.policies().size());
        assertEquals(2, s.peerAuthentications().size());

        Workload sleep = s.workloadByUid("cluster1//Pod/default/sleep-1").orElseThrow();
        assertEquals("sleep-1", sleep.getName());
        assertEquals("default", sleep.getNamespace());
        assertEquals("sleep", sleep.getServiceAccount());
        assertEquals(List.of(bytes("127.0.10.1"), bytes("fd00::10:1")), sleep.getAddressesList());
        assertEquals(4, sleep.getAddresses(0).size());
        assertEquals(16, sleep.getAddresses(1).size());
        assertEquals("node-a", sleep.getNode());
        assertEquals(TunnelProtocol.HBONE, sleep.getTunnelProtocol());
        assertEquals("cluster.local", sleep.getTrustDomain());
        assertEquals("sleep", sleep.getCanonicalName());
        assertEquals("v1", sleep.getCanonicalRevision());
        assertEquals("sleep", sleep.getWorkloadName());
        assertEquals(WorkloadStatus.HEALTHY, sleep.getStatus());
        assertEquals(bytes("127.0.0.2"), sleep.getNodeAddress());
        assertEquals("cluster1", sleep.getClusterId());
        assertFalse(sleep.hasWaypoint());

        // defaults
        Workload echo1 = s.workloadByUid("cluster1//Pod/default/echo-1").orElseThrow();
        assertEquals("echo-1", echo1.getCanonicalName());
        assertEquals("latest", echo1.getCanonicalRevision());
        assertEquals("echo-1", echo1.getWorkloadName());
        assertEquals("cluster.local", echo1.getTrustDomain());
        assertEquals(TunnelProtocol.HBONE, echo1.getTunnelProtocol());
        assertEquals(bytes("127.0.30.1"), echo1.getWaypoint().getAddress().getAddress());
        assertEquals(15008, echo1.getWaypoint().getHboneMtlsPort());
        assertEquals(List.of(Port.newBuilder().setServicePort(80).setTargetPort(8080).build()),
                echo1.getServicesMap().get("default/echo.default.svc.cluster.local").getPortsList());
        assertTrue(echo1.getNodeAddress().isEmpty());

        Workload echo2 = s.workloadByUid("cluster1//Pod/default/echo-2").orElseThrow();
        assertEquals("waypoint.default.svc.cluster.local", echo2.getWaypoint().getHostname().getHostname());
        assertEquals("default", echo2.getWaypoint().getHostname().getNamespace());
        assertEquals(0, echo2.getWaypoint().getHboneMtlsPort());
        assertEquals(0, echo2.getServicesMap().get("default/echo.default.svc.cluster.local").getPortsCount());

        assertEquals(WorkloadStatus.UNHEALTHY,
                s.workloadByUid("cluster1//Pod/default/echo-3").orElseThrow().getStatus());

        Workload legacy = s.workloadByUid("cluster2//Pod/legacy/legacy").orElseThrow();
        assertEquals(TunnelProtocol.NONE, legacy.getTunnelProtocol());
        assertEquals("default", legacy.getServiceAccount());
        assertEquals("cluster2", legacy.getClusterId());

        Service echo = s.serviceByHostname("default", "echo.default.svc.cluster.local").orElseThrow();
        assertEquals("echo", echo.getName());
        assertEquals(2, echo.getAddressesCount());
        assertEquals(bytes("127.0.100.1"), echo.getAddresses(0).getAddress());
        assertEquals(bytes("fd00::100:1"), echo.getAddresses(1).getAddress());
        assertEquals(List.of(Port.newBuilder().setServicePort(80).setTargetPort(8080).build(),
                Port.newBuilder().setServicePort(9000).setTargetPort(0).build()), echo.getPortsList());
        assertEquals(List.of("spiffe://cluster.local/ns/default/sa/echo"), echo.getSubjectAltNamesList());
        assertEquals(bytes("127.0.30.1"), echo.getWaypoint().getAddress().getAddress());
        assertEquals(0, echo.getWaypoint().getHboneMtlsPort());
        // hostname default
        assertTrue(s.serviceByHostname("default", "waypoint.default.svc.cluster.local").isPresent());

        Authorization deny = policy(s, "deny-legacy");
        assertEquals(Scope.NAMESPACE, deny.getScope());
        assertEquals(Action.DENY, deny.getAction());
        assertFalse(deny.getDryRun());
        assertEquals(StringMatch.newBuilder().setPrefix("cluster.local/ns/legacy/sa/").build(),
                deny.getRules(0).getClauses(0).getMatches(0).getPrincipals(0));

        Authorization allow = policy(s, "allow-sleep");
        assertEquals(Scope.WORKLOAD_SELECTOR, allow.getScope(), "inferred from selectedWorkloads");
        assertEquals(Action.ALLOW, allow.getAction());
        assertEquals(List.of("cluster1//Pod/default/echo-1"), allow.getSelectedWorkloadsList());
        assertEquals(2, allow.getRulesCount());
        Rule rule = allow.getRules(0);
        assertEquals(2, rule.getClausesCount());
        assertEquals(2, rule.getClauses(0).getMatchesCount());
        Match m0 = rule.getClauses(0).getMatches(0);
        assertEquals(StringMatch.newBuilder().setExact("cluster.local/ns/default/sa/sleep").build(),
                m0.getPrincipals(0), "spiffe:// prefix dropped");
        assertEquals(StringMatch.newBuilder().setSuffix("suffix").build(), m0.getNotPrincipals(0));
        Match m1 = rule.getClauses(0).getMatches(1);
        assertEquals(StringMatch.newBuilder().setExact("default").build(), m1.getNamespaces(0));
        assertEquals(StringMatch.newBuilder().setPrefix("kube-").build(), m1.getNotNamespaces(0));
        Match m2 = rule.getClauses(1).getMatches(0);
        assertEquals(List.of(cidr("10.0.0.0", 8), cidr("127.0.10.1", 32), cidr("fd00::", 8)), m2.getSourceIpsList());
        assertEquals(List.of(cidr("10.1.0.0", 16)), m2.getNotSourceIpsList());
        assertEquals(List.of(cidr("127.0.20.0", 24)), m2.getDestinationIpsList());
        assertEquals(List.of(cidr("127.0.20.9", 32)), m2.getNotDestinationIpsList());
        assertEquals(List.of(8080, 9090), m2.getDestinationPortsList());
        assertEquals(List.of(22), m2.getNotDestinationPortsList());
        assertEquals(0, allow.getRules(1).getClausesCount(), "[] is a rule without clauses");

        Authorization audit = policy(s, "mesh-audit");
        assertEquals(Scope.GLOBAL, audit.getScope());
        assertEquals(Action.DENY, audit.getAction());
        assertTrue(audit.getDryRun());
        assertEquals(StringMatch.newBuilder().setPresence(true).build(),
                audit.getRules(0).getClauses(0).getMatches(0).getNotPrincipals(0));

        PeerAuthentication strict = s.peerAuthentications().stream()
                .filter(p -> p.getName().equals("strict")).findFirst().orElseThrow();
        assertEquals(Scope.NAMESPACE, strict.getScope());
        assertEquals(PeerAuthentication.Mode.STRICT, strict.getMode());
        assertEquals(Map.of(8080, PeerAuthentication.Mode.PERMISSIVE, 9090, PeerAuthentication.Mode.DISABLE),
                strict.getPortModesMap());
        PeerAuthentication echoPa = s.peerAuthentications().stream()
                .filter(p -> p.getName().equals("echo-1")).findFirst().orElseThrow();
        assertEquals(Scope.WORKLOAD_SELECTOR, echoPa.getScope());
        assertEquals(PeerAuthentication.Mode.UNSET, echoPa.getMode());
        assertEquals(Map.of(8080, PeerAuthentication.Mode.STRICT), echoPa.getPortModesMap());
    }

    private static Authorization policy(StateSnapshot s, String name) {
        return s.policies().stream().filter(p -> p.getName().equals(name)).findFirst().orElseThrow();
    }

    private static Cidr cidr(String ip, int length) {
        return Cidr.newBuilder().setAddress(bytes(ip)).setLength(length).build();
    }

    @Test
    void emptyDocumentsGiveTheEmptyState() throws LocalConfigException {
        assertSame(StateSnapshot.EMPTY, parser.parse(""));
        assertSame(StateSnapshot.EMPTY, parser.parse("# nothing here\n"));
        StateSnapshot s = parser.parse("workloads: []\nservices:\npolicies: []\n");
        assertTrue(s.workloads().isEmpty());
        assertTrue(s.services().isEmpty());
    }

    static Stream<Arguments> invalid() {
        String w = "workloads:\n- {name: a, namespace: d, ";
        return Stream.of(
                Arguments.of("workloads:\n- {name: a, namespace: d}\n- {name: b, namespace: d}\n"
                        + "- {name: c, namespace: d, workloadIps: [x]}\n",
                        "workloads[2].workloadIps[0]: not an IP address: 'x'"),
                Arguments.of(w + "workloadIps: [localhost]}", "workloads[0].workloadIps[0]: not an IP address: 'localhost'"),
                Arguments.of(w + "workloadIps: [10]}", "workloads[0].workloadIps[0]: not an IP address: '10' (an IPv4 address has four octets)"),
                Arguments.of(w + "workloadIps: [256.0.0.1]}",
                        "workloads[0].workloadIps[0]: not an IP address: '256.0.0.1' (IPv4 octet out of range)"),
                Arguments.of(w + "workloadIps: [010.0.0.1]}", "workloads[0].workloadIps[0]: not an IP address: "
                        + "'010.0.0.1' (IPv4 octets must not have leading zeros)"),
                Arguments.of(w + "workloadIps: [\"fe80::1%eth0\"]}", "workloads[0].workloadIps[0]: not an IP "
                        + "address: 'fe80::1%eth0' (IPv6 zone ids are not supported)"),
                Arguments.of(w + "workloadIps: [\"fd00::1::2\"]}",
                        "workloads[0].workloadIps[0]: not an IP address: 'fd00::1::2'"),
                Arguments.of(w + "workloadIps: 10.0.0.1}", "workloads[0].workloadIps: expected a list; got '10.0.0.1'"),
                Arguments.of(w + "nodeAddress: node-a}", "workloads[0].nodeAddress: not an IP address: 'node-a'"),
                Arguments.of(w + "protocol: UDP}", "workloads[0].protocol: expected one of HBONE, TCP; got 'UDP'"),
                Arguments.of(w + "status: Ready}",
                        "workloads[0].status: expected one of Healthy, Unhealthy; got 'Ready'"),
                Arguments.of("workloads:\n- {namespace: d}", "workloads[0]: missing required key 'name'"),
                Arguments.of("workloads:\n- {name: a, namespace: \"\"}", "workloads[0].namespace: must not be empty"),
                Arguments.of(w + "workloadIP: [10.0.0.1]}",
                        "workloads[0].workloadIP: unknown key; did you mean 'workloadIps'?"),
                Arguments.of(w + "colour: blue}", "workloads[0].colour: unknown key (expected one of uid, clusterId, "
                        + "name, namespace, serviceAccount, workloadIps, node, protocol, trustDomain, canonicalName, "
                        + "canonicalRevision, workloadName, status, nodeAddress, waypoint, services, hostname)"),
                Arguments.of("workload: []", "workload: unknown key; did you mean 'workloads'?"),
                Arguments.of("- a\n- b\n", "(top level): expected a map with keys workloads, services, policies, "
                        + "peerAuthentications; got a list"),
                Arguments.of("workloads:\n- {name: a, namespace: d}\n- {name: a, namespace: d}\n",
                        "workloads[1]: duplicate uid 'cluster1//Pod/d/a' (also workloads[0])"),
                Arguments.of("workloads:\n- {name: a, namespace: d, uid: u1}\n- {name: b, namespace: d, uid: u1}\n",
                        "workloads[1].uid: duplicate uid 'u1' (also workloads[0])"),
                Arguments.of("workloads:\n- {name: a, namespace: d, workloadIps: [10.0.0.1]}\n"
                        + "- {name: b, namespace: d, workloadIps: [10.0.0.2, 10.0.0.1]}\n",
                        "workloads[1].workloadIps[1]: duplicate address 10.0.0.1 (also workloads[0].workloadIps[0])"),
                Arguments.of("workloads:\n- {name: a, namespace: d, workloadIps: [\"fd00::1\"]}\n"
                        + "services:\n- {name: s, namespace: d, vips: [\"fd00:0::1\"]}\n",
                        "services[0].vips[0]: duplicate address fd00::1 (also workloads[0].workloadIps[0])"),
                Arguments.of("services:\n- {name: s, namespace: d}\n- {name: t, namespace: d, "
                        + "hostname: s.d.svc.cluster.local}\n",
                        "services[1].hostname: duplicate service 'd/s.d.svc.cluster.local' (also services[0])"),
                Arguments.of("services:\n- {name: s, namespace: d, ports: {80: 70000}}",
                        "services[0].ports.80: not a port number (0..65535): '70000'"),
                Arguments.of("services:\n- {name: s, namespace: d, ports: {0: 80}}",
                        "services[0].ports.0: not a port number (1..65535): '0'"),
                Arguments.of("services:\n- {name: s, namespace: d, ports: {http: 80}}",
                        "services[0].ports.http: not a port number (1..65535): 'http'"),
                Arguments.of("services:\n- {name: s, namespace: d, waypoint: {port: 15008}}",
                        "services[0].waypoint: needs an address or a hostname"),
                Arguments.of("services:\n- {name: s, namespace: d, waypoint: {address: 1.2.3.4, hostname: w}}",
                        "services[0].waypoint: give either address or hostname, not both"),
                Arguments.of("services:\n- {name: s, namespace: d, waypoint: {address: 1.2.3.4, port: 0}}",
                        "services[0].waypoint.port: not a port number (1..65535): '0'"),
                Arguments.of(w + "services: {\"d/nope.d.svc.cluster.local\": {80: 8080}}}",
                        "workloads[0].services[\"d/nope.d.svc.cluster.local\"]: no service with namespace/hostname "
                                + "'d/nope.d.svc.cluster.local' in services"),
                Arguments.of(w + "services: {nope: {}}}",
                        "workloads[0].services.nope: expected a key \"<namespace>/<hostname>\", got 'nope'"),
                Arguments.of("policies:\n- {name: p, namespace: d, scope: Cluster}",
                        "policies[0].scope: expected one of Global, Namespace, WorkloadSelector; got 'Cluster'"),
                Arguments.of("policies:\n- {name: p, namespace: d, action: Audit}",
                        "policies[0].action: expected one of Allow, Deny, Custom; got 'Audit'"),
                Arguments.of("policies:\n- {name: p}", "policies[0]: missing required key 'namespace'"),
                Arguments.of("policies:\n- {name: p, namespace: d, dryRun: maybe}",
                        "policies[0].dryRun: expected true or false; got 'maybe'"),
                Arguments.of("policies:\n- {name: p, namespace: d}\n- {name: p, namespace: d}\n",
                        "policies[1]: duplicate policy 'd/p' (also policies[0])"),
                Arguments.of("policies:\n- {name: p, namespace: d, scope: Global}",
                        "policies[0].scope: scope Global is only allowed in the root namespace istio-system "
                                + "(use Namespace)"),
                Arguments.of("policies:\n- {name: p, namespace: d, scope: WorkloadSelector}",
                        "policies[0].scope: scope WorkloadSelector needs selectedWorkloads"),
                Arguments.of("workloads:\n- {name: a, namespace: d}\n"
                        + "policies:\n- {name: p, namespace: d, scope: Namespace, selectedWorkloads: [cluster1//Pod/d/a]}",
                        "policies[0].selectedWorkloads: only allowed with scope WorkloadSelector"),
                Arguments.of("policies:\n- {name: p, namespace: d, selectedWorkloads: [cluster1//Pod/d/x]}",
                        "policies[0].selectedWorkloads[0]: no workload with uid 'cluster1//Pod/d/x' in workloads"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [{principals: [a]}]}",
                        "policies[0].rules[0]: expected a rule: a list of clauses, each a list of matches or one "
                                + "match map; got a map"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[a]]}",
                        "policies[0].rules[0][0]: expected a clause: a list of matches or one match map; got 'a'"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[[]]]}",
                        "policies[0].rules[0][0]: a clause needs at least one match"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[{principal: [a]}]]}",
                        "policies[0].rules[0][0].principal: unknown key; did you mean 'principals'?"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[[{}, {sourceIps: [\"10.0.0.0/33\"]}]]]}",
                        "policies[0].rules[0][0][1].sourceIps[0]: prefix length must be 0..32: '10.0.0.0/33'"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[{notSourceIps: [\"fd00::/129\"]}]]}",
                        "policies[0].rules[0][0].notSourceIps[0]: prefix length must be 0..128: 'fd00::/129'"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[{destinationIps: [\"example.com/24\"]}]]}",
                        "policies[0].rules[0][0].destinationIps[0]: not an IP address or CIDR: 'example.com/24'"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[{destinationPorts: [0]}]]}",
                        "policies[0].rules[0][0].destinationPorts[0]: not a port number (1..65535): '0'"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[{notDestinationPorts: [\"x\"]}]]}",
                        "policies[0].rules[0][0].notDestinationPorts[0]: not a port number (1..65535): 'x'"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[{principals: [\"a*b\"]}]]}",
                        "policies[0].rules[0][0].principals[0]: '*' is only allowed at the start or the end: 'a*b'"),
                Arguments.of("policies:\n- {name: p, namespace: d, rules: [[{namespaces: [\"\"]}]]}",
                        "policies[0].rules[0][0].namespaces[0]: must not be empty (use \"*\" for any value)"),
                Arguments.of("peerAuthentications:\n- {name: p, namespace: d, mode: MUTUAL}",
                        "peerAuthentications[0].mode: expected one of STRICT, PERMISSIVE, DISABLE, UNSET; got 'MUTUAL'"),
                Arguments.of("peerAuthentications:\n- {name: p, namespace: d, portLevelMtls: {99999: STRICT}}",
                        "peerAuthentications[0].portLevelMtls.99999: not a port number (1..65535): '99999'"),
                Arguments.of("peerAuthentications:\n- {name: p, namespace: d, portLevelMtls: {80: {mod: STRICT}}}",
                        "peerAuthentications[0].portLevelMtls.80.mod: unknown key; did you mean 'mode'?"),
                Arguments.of("peerAuthentications:\n- {name: p, namespace: d}\n- {name: p, namespace: d}\n",
                        "peerAuthentications[1]: duplicate peer authentication 'd/p' (also peerAuthentications[0])"));
    }

    @ParameterizedTest
    @MethodSource
    void invalid(String yaml, String expected) {
        LocalConfigException e = assertThrows(LocalConfigException.class, () -> parser.parse(yaml));
        assertEquals(List.of(expected), e.problems(), "for:\n" + yaml);
        assertEquals(expected, e.getMessage());
    }

    @Test
    void reportsEveryProblemAtOnce() {
        String yaml = """
                workloads:
                - name: a
                  namespace: d
                  workloadIps: [x]
                  protocol: udp
                services:
                - name: s
                  ports: {80: 0}
                """;
        LocalConfigException e = assertThrows(LocalConfigException.class, () -> parser.parse(yaml));
        assertEquals(List.of("workloads[0].protocol: expected one of HBONE, TCP; got 'udp'",
                "workloads[0].workloadIps[0]: not an IP address: 'x'",
                "services[0]: missing required key 'namespace'"), e.problems());
        assertEquals("3 problems: " + String.join("; ", e.problems()), e.getMessage());
    }

    @Test
    void capsTheNumberOfProblems() {
        StringBuilder yaml = new StringBuilder("workloads:\n");
        for (int i = 0; i < 30; i++) {
            yaml.append("- {name: w").append(i).append(", namespace: d, workloadIps: [bad]}\n");
        }
        LocalConfigException e = assertThrows(LocalConfigException.class, () -> parser.parse(yaml.toString()));
        assertEquals(LocalConfigParser.MAX_PROBLEMS + 1, e.problems().size());
        assertEquals("... and 10 more", e.problems().getLast());
    }

    @Test
    void syntaxErrorsNameTheLine() {
        LocalConfigException e = assertThrows(LocalConfigException.class,
                () -> parser.parse("workloads:\n- name: a\n  namespace: [d\n"));
        assertTrue(e.getMessage().startsWith("not valid YAML: "), e.getMessage());
        assertTrue(e.getMessage().contains("(line "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    @Test
    void duplicateYamlKeysAreErrors() {
        LocalConfigException e = assertThrows(LocalConfigException.class,
                () -> parser.parse("workloads:\n- name: a\n  namespace: d\n  name: b\n"));
        assertTrue(e.getMessage().startsWith("not valid YAML: duplicate key 'name'"), e.getMessage());
        assertTrue(e.getMessage().contains("line 4"), e.getMessage());
    }

    @Test
    void onlyOneDocument() {
        LocalConfigException e = assertThrows(LocalConfigException.class,
                () -> parser.parse("workloads: []\n---\nservices: []\n"));
        assertTrue(e.getMessage().contains("only one YAML document"), e.getMessage());
    }

    @Test
    void yamlBooleanLikeWordsStayStrings() throws LocalConfigException {
        StateSnapshot s = parser.parse("workloads:\n- {name: on, namespace: no, node:}\n");
        Workload w = s.workloads().iterator().next();
        assertEquals("on", w.getName());
        assertEquals("no", w.getNamespace());
        assertEquals("", w.getNode(), "an empty value is absent");
    }

    @Test
    void acceptsIstioStyleValues() throws LocalConfigException {
        StateSnapshot s = parser.parse("""
                workloads:
                - {name: a, namespace: d, workloadIps: ["[fd00::1]", "::ffff:10.0.0.1"]}
                peerAuthentications:
                - name: p
                  namespace: d
                  selectedWorkloads: [cluster1//Pod/d/a]
                  portLevelMtls:
                    "8080": {mode: permissive}
                policies:
                - name: p
                  namespace: istio-system
                  scope: global
                  action: DENY
                  dryRun: "true"
                  rules: [[{destinationPorts: ["8080"]}]]
                """);
        Workload a = s.workloads().iterator().next();
        assertEquals(List.of(bytes("fd00::1"), bytes("10.0.0.1")), a.getAddressesList());
        assertEquals(4, a.getAddresses(1).size(), "IPv4-mapped addresses are stored as IPv4");
        PeerAuthentication pa = s.peerAuthentications().iterator().next();
        assertEquals(Scope.WORKLOAD_SELECTOR, pa.getScope());
        assertEquals(Map.of(8080, PeerAuthentication.Mode.PERMISSIVE), pa.getPortModesMap());
        Authorization p = s.policies().iterator().next();
        assertEquals(Scope.GLOBAL, p.getScope());
        assertTrue(p.getDryRun());
        assertEquals(List.of(8080), p.getRules(0).getClauses(0).getMatches(0).getDestinationPortsList());
    }
}
