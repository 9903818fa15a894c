package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.workload.Service;
import dev.ambient.xds.source.KubeYaml;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * DestinationRule TLS origination as Istio users write it, one row per shape: the TLS each port of
 * the ServiceEntry's service gets ({@code port:sni:ca:insecure}, "-" for none) and the problem
 * reported for a bad or unsupported field. Then policies and routes that name a ServiceEntry.
 */
class DestinationRuleTranslationTest {

    /** The egress namespace and its waypoint (ServiceEntryTranslationTest's), a ServiceEntry, a rule's head. */
    static final String BASE = ServiceEntryTranslationTest.BASE + """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api, namespace: egress, labels: {istio.io/use-waypoint: egress-waypoint}}
            spec:
              hosts: [api.example.com]
              ports:
              - {number: 80, name: http, protocol: HTTP, targetPort: 443}
              - {number: 8080, name: http-alt, protocol: HTTP}
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: api-tls, namespace: egress}
            """;

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("SIMPLE for every port: the SNI is the host, the system trust store", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: SIMPLE}}
                        """, "80:api.example.com::false 8080:api.example.com::false", null),
                Arguments.of("per port, with sni and caCertificates", """
                        spec:
                          host: api.example.com
                          trafficPolicy:
                            portLevelSettings:
                            - port: {number: 80}
                              tls: {mode: SIMPLE, sni: Edge.Example.com, caCertificates: /etc/egress/ca.pem}
                        """, "80:edge.example.com:/etc/egress/ca.pem:false", null),
                Arguments.of("a port's DISABLE over the rule's SIMPLE", """
                        spec:
                          host: api.example.com
                          trafficPolicy:
                            tls: {mode: SIMPLE}
                            portLevelSettings:
                            - port: {number: 8080}
                              tls: {mode: DISABLE}
                        """, "80:api.example.com::false", null),
                Arguments.of("insecureSkipVerify only when written", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}
                        """, "80:api.example.com::true 8080:api.example.com::true", null),
                Arguments.of("MUTUAL presents the client certificate", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}}
                        """, "80:api.example.com::false:cert=/c.pem,/k.pem 8080:api.example.com::false:cert=/c.pem,/k.pem",
                        null),
                Arguments.of("MUTUAL without a certificate refuses the host (fail closed)", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: MUTUAL, caCertificates: /ca.pem}}
                        """, "0:refused",
                        "spec.trafficPolicy.tls: MUTUAL needs clientCertificate and privateKey"),
                Arguments.of("credentialName is not supported: reported, and the host refused without files", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: MUTUAL, credentialName: api-client}}
                        """, "0:refused", "spec.trafficPolicy.tls.credentialName: not supported"),
                Arguments.of("an invalid rule asking for no TLS is skipped", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: DISABLE}, retries: 3}
                        """, "-", "spec.trafficPolicy.retries: unknown field; rule skipped"),
                Arguments.of("ISTIO_MUTUAL is what HBONE is already: nothing to originate", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
                        """, "-", null),
                Arguments.of("an unknown mode refuses the host (fail closed)", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: STRICT}}
                        """, "0:refused", "spec.trafficPolicy.tls.mode: must be one of"),
                Arguments.of("a relative caCertificates path refuses the host", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: SIMPLE, caCertificates: ca.pem}}
                        """, "0:refused", "spec.trafficPolicy.tls.caCertificates: must be an absolute path"),
                Arguments.of("insecureSkipVerify must be a boolean, else the host is refused", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: "yes"}}
                        """, "0:refused", "spec.trafficPolicy.tls.insecureSkipVerify: must be true or false"),
                Arguments.of("an unknown field beside a port's SIMPLE refuses the host", """
                        spec:
                          host: api.example.com
                          trafficPolicy:
                            portLevelSettings:
                            - port: {number: 80}
                              tls: {mode: SIMPLE, cipherSuites: [x]}
                        """, "0:refused", "spec.trafficPolicy.portLevelSettings[0].tls"),
                Arguments.of("subjectAltNames are verified instead of the SNI name", """
                        spec:
                          host: api.example.com
                          trafficPolicy: {tls: {mode: SIMPLE, subjectAltNames: [other.example.com, "spiffe://x/y"]}}
                        """, "80:api.example.com::false:san=other.example.com|spiffe://x/y"
                        + " 8080:api.example.com::false:san=other.example.com|spiffe://x/y", null),
                Arguments.of("a host that is no service", """
                        spec:
                          host: nowhere.example.com
                          trafficPolicy: {tls: {mode: SIMPLE}}
                        """, "-", "spec.host: nowhere.example.com is no Service or ServiceEntry host"),
                Arguments.of("a port the service does not have", """
                        spec:
                          host: api.example.com
                          trafficPolicy:
                            portLevelSettings:
                            - port: {number: 443}
                              tls: {mode: SIMPLE}
                        """, "-", "api.example.com has no port 443"));
    }

    static Translation translate(String yaml) throws Exception {
        return new MeshTranslator().translate(MeshInput.builder().addAll(KubeYaml.parse(yaml, k -> {
        })).build(), 1);
    }

    static Service api(Translation t) {
        return (Service) t.snapshot().resources(ResourceTypes.SERVICE).values().stream()
                .map(e -> e.resource()).filter(m -> ((Service) m).getHostname().equals("api.example.com"))
                .findFirst().orElseThrow();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void destinationRule(String name, String rule, String expected, String problem) throws Exception {
        Translation t = translate(BASE + rule);
        Service s = api(t);
        String tls = s.getOriginatedTlsList().isEmpty() ? "-" : s.getOriginatedTlsList().stream()
                .map(o -> !o.getRefusal().isEmpty() ? o.getPort() + ":refused"
                        : o.getPort() + ":" + o.getSni() + ":" + o.getCaCertificates() + ":" + o.getInsecureSkipVerify()
                        + (o.getClientCertificate().isEmpty() ? "" : ":cert=" + o.getClientCertificate() + ","
                                + o.getPrivateKey())
                        + (o.getSubjectAltNamesCount() == 0 ? "" : ":san=" + String.join("|", o.getSubjectAltNamesList())))
                .collect(Collectors.joining(" "));
        assertEquals(expected, tls, name + "; problems " + t.problems());
        List<Problem> problems = t.problems().stream().filter(p -> p.resource().startsWith("DestinationRule/")).toList();
        if (problem == null) {
            assertTrue(problems.isEmpty(), name + ": " + problems);
        } else {
            assertTrue(problems.stream().anyMatch(p -> p.reason().contains(problem)), name + ": " + problems);
        }
        s.getOriginatedTlsList().forEach(o -> assertEquals("egress/api-tls", o.getSource()));
        // A refusal says why, the problem's own words.
        s.getOriginatedTlsList().stream().filter(o -> !o.getRefusal().isEmpty()).forEach(o -> assertTrue(
                o.getRefusal().startsWith("DestinationRule egress/api-tls asks for TLS but is invalid: ")
                        && o.getRefusal().contains(problem), o.getRefusal()));
        // What the snapshot serves is what the routes and policies see.
        assertEquals(s.getOriginatedTlsCount(), t.snapshot().resources(ResourceTypes.SERVICE).values().stream()
                .map(e -> (Service) e.resource()).filter(x -> x.getHostname().equals("api.example.com"))
                .mapToInt(Service::getOriginatedTlsCount).sum());
    }

    @Test
    void policiesAndRoutesNameAServiceEntry() throws Exception {
        Translation t = translate(BASE + """
                spec: {host: api.example.com, trafficPolicy: {tls: {mode: SIMPLE}}}
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: api-paths, namespace: egress}
                spec:
                  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: api}]
                  action: ALLOW
                  rules: [{to: [{operation: {paths: ["/get"]}}]}]
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: ghost, namespace: egress}
                spec:
                  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: ghost}]
                  action: DENY
                  rules: [{to: [{operation: {paths: ["/x"]}}]}]
                ---
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: api-timeout, namespace: egress}
                spec:
                  parentRefs: [{kind: ServiceEntry, group: networking.istio.io, name: api}]
                  rules: [{timeouts: {request: 3s}}]
                ---
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: via-gateway, namespace: egress}
                spec:
                  parentRefs: [{kind: Gateway, name: egress-waypoint}]
                  hostnames: [api.example.com]
                  rules: [{matches: [{path: {type: PathPrefix, value: /v2}}]}]
                """);
        L7Authorization policy = (L7Authorization) t.snapshot().resources(ResourceTypes.L7_AUTHORIZATION).values()
                .stream().map(e -> e.resource()).filter(m -> ((L7Authorization) m).getName().equals("api-paths"))
                .findFirst().orElseThrow(() -> new AssertionError(t.problems().toString()));
        assertEquals(List.of("Service/egress/api.example.com"), policy.getTargetsList());
        assertTrue(t.problems().stream().anyMatch(p -> p.resource().equals("AuthorizationPolicy/egress/ghost")
                && p.reason().contains("ServiceEntry egress/ghost does not exist")), t.problems().toString());
        ServiceRoutes routes = (ServiceRoutes) t.snapshot().resources(ResourceTypes.SERVICE_ROUTES).values().stream()
                .map(e -> e.resource()).filter(m -> ((ServiceRoutes) m).getServiceHostname().equals("api.example.com"))
                .findFirst().orElseThrow(() -> new AssertionError(t.problems().toString()));
        assertEquals(List.of("egress/api-timeout", "egress/via-gateway"), routes.getSourcesList().stream().sorted()
                .toList());
        assertEquals(2, api(t).getOriginatedTlsCount(), "the rule still applies");
    }
}
