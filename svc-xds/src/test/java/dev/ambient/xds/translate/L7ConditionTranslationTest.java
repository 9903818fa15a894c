package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.TextFormat;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.xds.source.KubeYaml;
import java.net.InetAddress;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * L7 rules (targetRefs policies, enforced by a waypoint) whose conditions the waypoint cannot
 * evaluate fail closed, as Istio does: in a DENY rule the condition is dropped (the rule denies
 * more), an ALLOW rule with it is dropped (it never matches); either way the problem report says
 * why. Address conditions become CIDR blocks, so the waypoint compares addresses, not strings.
 */
class L7ConditionTranslationTest {

    static Arguments row(String action, String when, String expectedRules, String problem) {
        return Arguments.of(action + " when " + when.replace('\n', ' '), action, when, expectedRules, problem);
    }

    static String cidr(String ip, int length) throws Exception {
        ByteString raw = ByteString.copyFrom(InetAddress.ofLiteral(ip).getAddress());
        return "address: \"" + TextFormat.escapeBytes(raw) + "\" length: " + length;
    }

    static Stream<Arguments> cases() throws Exception {
        String toAdmin = "to { paths { prefix: \"/admin\" } } ";
        return Stream.of(
                // JWT conditions the waypoint evaluates pass as they are; malformed ones fail closed.
                row("DENY", "{key: 'request.auth.claims[group]', values: [admins]}",
                        toAdmin.trim() + " when { key: \"request.auth.claims[group]\" values { exact: \"admins\" } }",
                        null),
                row("ALLOW", "{key: 'request.auth.claims[realm][roles]', notValues: ['guest*']}",
                        toAdmin.trim() + " when { key: \"request.auth.claims[realm][roles]\" not_values { prefix: \"guest\" } }",
                        null),
                row("ALLOW", "{key: request.auth.principal, values: ['https://issuer/*']}",
                        toAdmin.trim() + " when { key: \"request.auth.principal\" values { prefix: \"https://issuer/\" } }",
                        null),
                row("DENY", "{key: request.auth.audiences, values: [other]}",
                        toAdmin.trim() + " when { key: \"request.auth.audiences\" values { exact: \"other\" } }", null),
                row("ALLOW", "{key: request.auth.presenter, values: [web]}",
                        toAdmin.trim() + " when { key: \"request.auth.presenter\" values { exact: \"web\" } }", null),
                row("DENY", "{key: 'request.auth.claims[]', values: [admins]}", toAdmin, "not a request.auth key"),
                row("ALLOW", "{key: 'request.auth.claims[a]b', values: [x]}", "", "not a request.auth key"),
                row("ALLOW", "{key: request.auth.raw, values: [x]}", "", "not a request.auth key"),
                row("ALLOW", "{key: '" + "request.auth.claims" + "[a]".repeat(11) + "', values: [x]}", "",
                        "not a request.auth key"),
                // Keys the waypoint does not evaluate at all.
                row("DENY", "{key: connection.sni, values: [internal.example]}", toAdmin, "not evaluated by the waypoint"),
                row("ALLOW", "{key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: [x]}", "",
                        "not evaluated by the waypoint"),
                row("DENY", "{key: source.user, values: [root]}", toAdmin, "not evaluated by the waypoint"),
                row("DENY", "{key: 'request.headers[]', values: [x]}", toAdmin, "header name"),
                row("ALLOW", "{key: 'request.headers[bad name]', values: [x]}", "", "header name"),
                // Address conditions are addresses, and a bad one fails closed.
                row("DENY", "{key: source.ip, values: [10.0.0.0/8]}",
                        toAdmin.trim() + " when { key: \"source.ip\" ip_blocks { " + cidr("10.0.0.0", 8) + " } }", null),
                row("DENY", "{key: remote.ip, notValues: [192.168.1.7]}",
                        toAdmin.trim() + " when { key: \"remote.ip\" not_ip_blocks { " + cidr("192.168.1.7", 32) + " } }",
                        null),
                row("ALLOW", "{key: destination.ip, values: ['fd00::1/64']}",
                        toAdmin.trim() + " when { key: \"destination.ip\" ip_blocks { " + cidr("fd00::1", 64) + " } }",
                        null),
                row("DENY", "{key: source.ip, values: [not-an-address]}", toAdmin, "denies more broadly"),
                row("ALLOW", "{key: source.ip, values: [10.0.0.0/33]}", "", "never matches"),
                row("ALLOW", "{key: destination.port, values: [http]}", "", "not a port number"),
                // What the waypoint evaluates passes as it is.
                row("ALLOW", "{key: destination.port, values: ['9080']}",
                        toAdmin.trim() + " when { key: \"destination.port\" values { exact: \"9080\" } }", null),
                row("DENY", "{key: 'request.headers[X-Token]', values: ['let-*']}",
                        toAdmin.trim() + " when { key: \"request.headers[X-Token]\" values { prefix: \"let-\" } }",
                        null),
                row("ALLOW", "{key: source.principal, notValues: ['spiffe://cluster.local/ns/a/sa/b']}",
                        toAdmin.trim() + " when { key: \"source.principal\" not_values { exact: \"cluster.local/ns/a/sa/b\" } }",
                        null));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void conditionsTheWaypointCannotEvaluateFailClosed(String name, String action, String when, String expectedRules,
            String problem) throws Exception {
        String yaml = """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: p, namespace: shop}
                spec:
                  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
                  action: %s
                  rules:
                  - to: [{operation: {paths: ["/admin*"]}}]
                    when:
                    - %s
                """.formatted(action, when);
        MeshInput input = MeshInput.builder().addAll(Fixtures.objects("bookinfo.yaml"))
                .addAll(KubeYaml.parse(yaml, kind -> {
                })).build();
        Translation t = new MeshTranslator().translate(input, 1);
        var entry = t.snapshot().resources(ResourceTypes.L7_AUTHORIZATION).get("shop/p");
        assertNotNull(entry, "policy translated: " + t.problems());
        L7Authorization policy = (L7Authorization) entry.resource();
        List<L7Rule> expected = expectedRules.isEmpty() ? List.of()
                : List.of(TextFormat.parse(expectedRules, L7Rule.class));
        assertEquals(expected, policy.getRulesList(), name);
        List<Problem> problems = t.problems().stream().filter(p -> p.resource().equals("AuthorizationPolicy/shop/p"))
                .toList();
        if (problem == null) {
            assertTrue(problems.isEmpty(), "no problem expected: " + problems);
        } else {
            assertEquals(1, problems.size(), problems.toString());
            assertTrue(problems.getFirst().reason().contains(problem), problems.getFirst().reason());
            assertTrue(problems.getFirst().reason().contains(action.equals("DENY") ? "denies more broadly"
                    : "never matches (ALLOW fails closed)"), problems.getFirst().reason());
        }
    }
}
