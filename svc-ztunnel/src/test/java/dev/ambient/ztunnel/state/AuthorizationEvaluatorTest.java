package dev.ambient.ztunnel.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.ztunnel.state.AuthorizationEvaluator.Decision;
import dev.ambient.ztunnel.state.AuthorizationEvaluator.Request;
import java.net.InetAddress;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class AuthorizationEvaluatorTest {

    private static final String SLEEP = "cluster.local/ns/default/sa/sleep";
    private static final String LEGACY = "cluster.local/ns/legacy/sa/old";
    private static final InetAddress SRC = Addresses.parseLiteral("127.0.10.1");
    private static final InetAddress DST = Addresses.parseLiteral("127.0.20.1");

    private final AuthorizationEvaluator evaluator = new AuthorizationEvaluator();

    /** The echo-1 workload (default/127.0.20.1) with the given policies. */
    private static StateSnapshot with(String policiesYaml) {
        try {
            return new LocalConfigParser().parse("""
                    workloads:
                    - {name: echo-1, namespace: default, workloadIps: [127.0.20.1, "fd00::20:1"]}
                    - {name: other, namespace: other, workloadIps: [127.0.50.1]}
                    policies:
                    """ + policiesYaml.indent(2));
        } catch (LocalConfigException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    private Decision decide(StateSnapshot s, Request r) {
        return evaluator.evaluate(s, s.workloadByAddress(r.destinationIp()).orElseThrow(), r);
    }

    private static Request mtls(String principal, int port) {
        return Request.authenticated(principal, SRC, DST, port);
    }

    private static Request plain(int port) {
        return Request.plaintext(SRC, DST, port);
    }

    private static void allowed(Decision d, String reason) {
        assertTrue(d.allowed(), d.reason());
        assertEquals(reason, d.reason());
    }

    private static void denied(Decision d, String reason) {
        assertFalse(d.allowed(), d.reason());
        assertEquals(reason, d.reason());
    }

    @Test
    void noPolicyAllows() {
        allowed(decide(with("[]"), plain(80)), "no policy applies");
        StateSnapshot otherNamespaceOnly = with("""
                - {name: deny-all, namespace: other, action: Deny, rules: [[]]}
                """);
        allowed(decide(otherNamespaceOnly, plain(80)), "no policy applies");
    }

    @Test
    void customFailsClosedAtTheZtunnel() {
        // An ext_authz policy reaching a ztunnel (no waypoint to call the authorizer) denies what it
        // matches; it was ignored before, so the ALLOW-all let the request through.
        StateSnapshot s = with("""
                - {name: allow-all, namespace: default, rules: [[]]}
                - name: ext-authz
                  namespace: default
                  action: Custom
                  rules: [[{destinationPorts: [8080]}]]
                """);
        denied(decide(s, mtls(SLEEP, 8080)), "denied by CUSTOM policy default/ext-authz");
        allowed(decide(s, mtls(SLEEP, 80)), "allowed by ALLOW policy default/allow-all");
    }

    @Test
    void denyWins() {
        StateSnapshot s = with("""
                - name: allow-all
                  namespace: default
                  rules: [[]]
                - name: deny-legacy
                  namespace: default
                  action: Deny
                  rules: [[{principals: ["cluster.local/ns/legacy/sa/*"]}]]
                """);
        denied(decide(s, mtls(LEGACY, 80)), "denied by DENY policy default/deny-legacy");
        allowed(decide(s, mtls(SLEEP, 80)), "allowed by ALLOW policy default/allow-all");
        allowed(decide(s, plain(80)), "allowed by ALLOW policy default/allow-all");
    }

    @Test
    void denyThatDoesNotMatchAndNoAllowAllows() {
        StateSnapshot s = with("""
                - {name: deny-legacy, namespace: default, action: Deny, rules: [[{namespaces: [legacy]}]]}
                """);
        allowed(decide(s, mtls(SLEEP, 80)), "no DENY policy matched (1 apply) and no ALLOW policy applies");
        denied(decide(s, mtls(LEGACY, 80)), "denied by DENY policy default/deny-legacy");
    }

    @Test
    void allowPoliciesThatDoNotMatchDeny() {
        StateSnapshot s = with("""
                - {name: only-sleep, namespace: default, rules: [[{principals: ["cluster.local/ns/default/sa/sleep"]}]]}
                - {name: only-admin-port, namespace: default, rules: [[{destinationPorts: [15000]}]]}
                """);
        allowed(decide(s, mtls(SLEEP, 80)), "allowed by ALLOW policy default/only-sleep");
        allowed(decide(s, mtls(LEGACY, 15000)), "allowed by ALLOW policy default/only-admin-port");
        denied(decide(s, mtls(LEGACY, 80)), "no ALLOW policy matched (2 apply)");
    }

    @Test
    void policiesWithoutRulesMatchNothing() {
        denied(decide(with("- {name: allow-nothing, namespace: default}"), mtls(SLEEP, 80)),
                "no ALLOW policy matched (1 apply)");
        allowed(decide(with("- {name: deny-nothing, namespace: default, action: Deny}"), plain(80)),
                "no DENY policy matched (1 apply) and no ALLOW policy applies");
        allowed(decide(with("- {name: allow-all, namespace: default, rules: [[]]}"), plain(80)),
                "allowed by ALLOW policy default/allow-all");
    }

    @Test
    void plaintextFailsPositiveAndPassesNegativeIdentityFields() {
        StateSnapshot requireMtls = with("""
                - {name: require-mtls, namespace: default, action: Deny, rules: [[{notPrincipals: ["*"]}]]}
                """);
        denied(decide(requireMtls, plain(80)), "denied by DENY policy default/require-mtls");
        allowed(decide(requireMtls, mtls(SLEEP, 80)), "no DENY policy matched (1 apply) and no ALLOW policy applies");

        StateSnapshot onlyDefault = with("""
                - {name: not-default, namespace: default, action: Deny, rules: [[{notNamespaces: [default]}]]}
                """);
        denied(decide(onlyDefault, plain(80)), "denied by DENY policy default/not-default");
        denied(decide(onlyDefault, mtls(LEGACY, 80)), "denied by DENY policy default/not-default");
        assertTrue(decide(onlyDefault, mtls(SLEEP, 80)).allowed(), "namespace taken from the principal");

        StateSnapshot anyPrincipal = with("""
                - {name: any-identity, namespace: default, rules: [[{principals: ["*"]}]]}
                """);
        denied(decide(anyPrincipal, plain(80)), "no ALLOW policy matched (1 apply)");
        allowed(decide(anyPrincipal, mtls(SLEEP, 80)), "allowed by ALLOW policy default/any-identity");

        StateSnapshot namespaces = with("""
                - {name: from-default, namespace: default, rules: [[{namespaces: ["def*"]}]]}
                """);
        assertFalse(decide(namespaces, plain(80)).allowed());
        assertTrue(decide(namespaces, mtls("spiffe://" + SLEEP, 80)).allowed(), "spiffe:// form accepted");
        assertTrue(decide(namespaces, new Request(Optional.empty(), Optional.of("default"), SRC, DST, 80)).allowed(),
                "an explicit namespace counts even without a principal");
    }

    @Test
    void stringMatchForms() {
        StateSnapshot s = with("""
                - {name: p, namespace: default, rules: [[{principals: ["*/sa/sleep", "cluster.local/ns/legacy/*"]}]]}
                """);
        assertTrue(decide(s, mtls(SLEEP, 80)).allowed(), "suffix");
        assertTrue(decide(s, mtls(LEGACY, 80)).allowed(), "prefix");
        assertFalse(decide(s, mtls("cluster.local/ns/default/sa/sleepy", 80)).allowed());
        StateSnapshot exact = with("""
                - {name: p, namespace: default, rules: [[{principals: ["cluster.local/ns/default/sa/sleep"]}]]}
                """);
        assertTrue(decide(exact, mtls(SLEEP, 80)).allowed());
        assertFalse(decide(exact, mtls("other.td/ns/default/sa/sleep", 80)).allowed());
    }

    @Test
    void cidrsIpv4() {
        StateSnapshot s = with("""
                - name: p
                  namespace: default
                  rules: [[{sourceIps: ["10.0.0.0/12", "192.168.1.7"], notSourceIps: ["10.0.1.0/24"]}]]
                """);
        assertTrue(decide(s, source("10.15.255.255")).allowed());
        assertFalse(decide(s, source("10.16.0.0")).allowed(), "outside /12");
        assertFalse(decide(s, source("10.0.1.9")).allowed(), "excluded by notSourceIps");
        assertTrue(decide(s, source("192.168.1.7")).allowed(), "single address");
        assertFalse(decide(s, source("192.168.1.8")).allowed());
        assertFalse(decide(s, source("::ffff:10.0.1.9")).allowed(), "IPv4-mapped source is IPv4");
        assertTrue(decide(s, source("::ffff:10.1.0.1")).allowed());
        assertFalse(decide(s, source("fd00::1")).allowed(), "IPv6 never in an IPv4 CIDR");

        StateSnapshot all = with("- {name: p, namespace: default, rules: [[{sourceIps: [\"0.0.0.0/0\"]}]]}");
        assertTrue(decide(all, source("203.0.113.9")).allowed());
        assertFalse(decide(all, source("2001:db8::1")).allowed());
    }

    @Test
    void cidrsIpv6() {
        StateSnapshot s = with("""
                - name: p
                  namespace: default
                  rules: [[{sourceIps: ["fd00::/8", "2001:db8::1"], notSourceIps: ["fd12:3400::/23"]}]]
                """);
        assertTrue(decide(s, source("fd99::1")).allowed());
        assertFalse(decide(s, source("fe80::1")).allowed());
        assertTrue(decide(s, source("2001:db8::1")).allowed());
        assertFalse(decide(s, source("2001:db8::2")).allowed(), "a single address is a /128");
        assertFalse(decide(s, source("fd12:35ff::1")).allowed(), "inside the /23 exclusion");
        assertTrue(decide(s, source("fd12:3600::1")).allowed(), "just outside the /23");
        assertFalse(decide(s, source("10.0.0.1")).allowed(), "IPv4 never in an IPv6 CIDR");
    }

    @Test
    void destinationAddressesAndPorts() {
        StateSnapshot s = with("""
                - name: p
                  namespace: default
                  rules:
                  - - destinationIps: ["fd00::/16"]
                      destinationPorts: [8080, 9090]
                      notDestinationPorts: [9090]
                  - - destinationIps: ["127.0.20.0/24"]
                      notDestinationIps: ["127.0.20.1"]
                """);
        InetAddress v6 = Addresses.parseLiteral("fd00::20:1");
        assertTrue(decide(s, Request.plaintext(SRC, v6, 8080)).allowed());
        assertFalse(decide(s, Request.plaintext(SRC, v6, 9090)).allowed(), "notDestinationPorts");
        assertFalse(decide(s, Request.plaintext(SRC, v6, 80)).allowed(), "destinationPorts");
        assertFalse(decide(s, plain(8080)).allowed(), "127.0.20.1 is excluded; not in fd00::/16");
    }

    @Test
    void rulesAreOrClausesAreAndMatchesAreOr() {
        StateSnapshot s = with("""
                - name: p
                  namespace: default
                  rules:
                  - # rule 0: (from sleep OR from namespace legacy) AND to port 8080
                    - - principals: ["cluster.local/ns/default/sa/sleep"]
                      - namespaces: [legacy]
                    - destinationPorts: [8080]
                  - # rule 1: anything to port 15000
                    - destinationPorts: [15000]
                """);
        assertTrue(decide(s, mtls(SLEEP, 8080)).allowed());
        assertTrue(decide(s, mtls(LEGACY, 8080)).allowed());
        assertFalse(decide(s, mtls(SLEEP, 80)).allowed(), "second clause fails");
        assertFalse(decide(s, mtls("cluster.local/ns/x/sa/y", 8080)).allowed(), "first clause fails");
        assertTrue(decide(s, plain(15000)).allowed(), "rule 1");
    }

    @Test
    void dryRunNeverChangesTheDecision() {
        StateSnapshot dryDeny = with("""
                - {name: would-deny, namespace: default, action: Deny, dryRun: true, rules: [[{notPrincipals: ["*"]}]]}
                """);
        Decision d = decide(dryDeny, plain(80));
        assertTrue(d.allowed(), d.reason());
        assertEquals("no policy applies; with dry-run policies: would be denied "
                + "(denied by dry-run DENY policy default/would-deny)", d.reason());
        Decision unaffected = decide(dryDeny, mtls(SLEEP, 80));
        assertTrue(unaffected.allowed());
        assertTrue(unaffected.reason().endsWith("with dry-run policies: same outcome "
                + "(no DENY policy matched (1 apply) and no ALLOW policy applies)"), unaffected.reason());

        StateSnapshot dryAllow = with("""
                - {name: deny-legacy, namespace: default, action: Deny, rules: [[{namespaces: [legacy]}]]}
                - {name: only-sleep, namespace: default, dryRun: true,
                   rules: [[{principals: ["cluster.local/ns/default/sa/sleep"]}]]}
                """);
        Decision plaintext = decide(dryAllow, plain(80));
        assertTrue(plaintext.allowed(), "a dry-run ALLOW that does not match does not deny");
        assertTrue(plaintext.reason().contains("would be denied (no ALLOW policy matched (1 apply))"),
                plaintext.reason());
        Decision legacy = decide(dryAllow, mtls(LEGACY, 80));
        assertFalse(legacy.allowed());
        assertTrue(legacy.reason().startsWith("denied by DENY policy default/deny-legacy"), legacy.reason());
    }

    @Test
    void globalAndSelectorPoliciesApply() {
        StateSnapshot s = with("""
                - {name: mesh-deny-plaintext, namespace: istio-system, scope: Global, action: Deny,
                   rules: [[{notPrincipals: ["*"]}]]}
                - {name: echo-only-sleep, namespace: default, selectedWorkloads: [cluster1//Pod/default/echo-1],
                   rules: [[{principals: ["*/sa/sleep"]}]]}
                """);
        denied(decide(s, plain(80)), "denied by DENY policy istio-system/mesh-deny-plaintext");
        denied(decide(s, mtls(LEGACY, 80)), "no ALLOW policy matched (1 apply)");
        allowed(decide(s, mtls(SLEEP, 80)), "allowed by ALLOW policy default/echo-only-sleep");
        Request toOther = Request.authenticated(LEGACY, SRC, Addresses.parseLiteral("127.0.50.1"), 80);
        allowed(decide(s, toOther), "no DENY policy matched (1 apply) and no ALLOW policy applies");
    }

    @Test
    void requestNormalisesIdentity() {
        Request r = Request.authenticated("spiffe://td/ns/app/sa/web", SRC, DST, 80);
        assertEquals(Optional.of("td/ns/app/sa/web"), r.sourcePrincipal());
        assertEquals(Optional.of("app"), r.sourceNamespace());
        Request blank = new Request(Optional.of(""), null, SRC, DST, 80);
        assertEquals(Optional.empty(), blank.sourcePrincipal());
        assertEquals(Optional.empty(), blank.sourceNamespace());
        assertEquals("td/ns/a/sa/b", AuthorizationEvaluator.principalOf("td", "a", "b"));
    }

    private static Request source(String ip) {
        return Request.plaintext(Addresses.parseLiteral(ip), DST, 80);
    }
}
