package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.TextFormat;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.xds.source.KubeYaml;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * HTTPRoute filters as the Gateway API defines them, one rule per row: what the waypoint's route
 * gets, or the problem naming the field (and then the route is skipped, never half applied).
 */
class RouteFilterTranslationTest {

    static final String TABLE = "shop/reviews.shop.svc.cluster.local";

    static Arguments ok(String name, String match, String filters, String expected) {
        return Arguments.of(name, match, filters, expected, null);
    }

    static Arguments bad(String name, String match, String filters, String problem) {
        return Arguments.of(name, match, filters, null, problem);
    }

    static Stream<Arguments> cases() {
        String prefix = "{path: {type: PathPrefix, value: /old}}";
        String exact = "{path: {type: Exact, value: /old}}";
        return Stream.of(
                ok("redirect with every field", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {scheme: https, hostname: example.org, port: 8443, statusCode: 301,
                            path: {type: ReplaceFullPath, replaceFullPath: /new}}""",
                        "redirect { scheme: 'https' hostname: 'example.org' port: 8443 status_code: 301"
                                + " path { full_path: '/new' } }"),
                ok("redirect defaults to 302 and binds the matched prefix", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}""",
                        "redirect { status_code: 302 path { prefix { matched_prefix: '/old' replacement: '/new' } } }"),
                ok("rewrite of host and prefix; an empty replacement strips it", prefix, """
                        - type: URLRewrite
                          urlRewrite: {hostname: internal.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: ''}}""",
                        "rewrite { hostname: 'internal.example' path { prefix { matched_prefix: '/old' } } }"),
                ok("full path rewrite after an exact match", exact, """
                        - type: URLRewrite
                          urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /new/whole}}""",
                        "rewrite { path { full_path: '/new/whole' } }"),
                ok("response header modifier", prefix, """
                        - type: ResponseHeaderModifier
                          responseHeaderModifier: {set: [{name: X-Frame, value: deny}], remove: [server]}""",
                        "response_header_mutations { name: 'X-Frame' value: 'deny' }"
                                + " response_header_mutations { op: REMOVE name: 'server' }"),
                bad("prefix rewrite needs a prefix match", exact, """
                        - type: URLRewrite
                          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}""",
                        "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch: needs a PathPrefix match, but "
                                + "spec.rules[0].matches[0].path is Exact"),
                bad("status code outside the five", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {statusCode: 305}""",
                        "spec.rules[0].filters[0].requestRedirect.statusCode: 305 is not one of"),
                bad("scheme", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {scheme: ftp}""",
                        "spec.rules[0].filters[0].requestRedirect.scheme: 'ftp' is not http or https"),
                bad("a hostname with a port", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {hostname: 'evil.example:80'}""",
                        "spec.rules[0].filters[0].requestRedirect.hostname: 'evil.example:80' is not a precise host"),
                bad("a header injected through a hostname", prefix, """
                        - type: URLRewrite
                          urlRewrite: {hostname: "a.example\\r\\nx-injected: 1"}""",
                        "spec.rules[0].filters[0].urlRewrite.hostname:"),
                bad("port out of range", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {port: 70000}""",
                        "spec.rules[0].filters[0].requestRedirect.port"),
                bad("dot segments in a rewritten path", prefix, """
                        - type: URLRewrite
                          urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /public/../admin}}""",
                        "spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: '/public/../admin' is not a"
                                + " normalized path"),
                bad("an encoded slash in a rewritten prefix", prefix, """
                        - type: URLRewrite
                          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /a%2Fb}}""",
                        "replacePrefixMatch: '/a%2Fb' is not a normalized path"),
                bad("a relative path", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: new}}""",
                        "replaceFullPath: 'new' is not an absolute path"),
                bad("a path type without its value", prefix, """
                        - type: URLRewrite
                          urlRewrite: {path: {type: ReplaceFullPath}}""",
                        "spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: required for type ReplaceFullPath"),
                bad("the value of the other path type", prefix, """
                        - type: URLRewrite
                          urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /a, replacePrefixMatch: /b}}""",
                        "urlRewrite.path.replacePrefixMatch: does not belong to type ReplaceFullPath"),
                bad("an unknown field of a redirect", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {statuscode: 301}""",
                        "spec.rules[0].filters[0].requestRedirect.statuscode: unknown field"),
                bad("redirect and rewrite together", prefix, """
                        - type: RequestRedirect
                          requestRedirect: {hostname: a.example}
                        - type: URLRewrite
                          urlRewrite: {hostname: b.example}""",
                        "spec.rules[0].filters: RequestRedirect and URLRewrite cannot be used together"),
                bad("a filter type twice", prefix, """
                        - type: URLRewrite
                          urlRewrite: {hostname: a.example}
                        - type: URLRewrite
                          urlRewrite: {hostname: b.example}""",
                        "spec.rules[0].filters[1].type: URLRewrite is given twice in one rule"),
                bad("the body of another filter type", prefix, """
                        - type: URLRewrite
                          requestRedirect: {hostname: a.example}""",
                        "spec.rules[0].filters[0].requestRedirect: does not belong to a filter of type URLRewrite"),
                bad("a filter without its body", prefix, """
                        - type: RequestRedirect""",
                        "spec.rules[0].filters[0].requestRedirect: required for type RequestRedirect"),
                ok("a mirror, 100 % when it says no share", prefix, """
                        - type: RequestMirror
                          requestMirror: {backendRef: {name: reviews-v2, port: 9080}}""",
                        "mirrors { service: 'shop/reviews-v2.shop.svc.cluster.local' port: 9080 percent: 100 }"),
                bad("CORS is not supported", prefix, """
                        - type: CORS""",
                        "spec.rules[0].filters[0].type: filter type CORS is not supported"),
                bad("a header value with a line break", prefix, """
                        - type: ResponseHeaderModifier
                          responseHeaderModifier: {set: [{name: x-a, value: "1\\r\\nset-cookie: s=1"}]}""",
                        "responseHeaderModifier.set[0].value: CR, LF and NUL are not allowed"),
                bad("a header name with a space", prefix, """
                        - type: RequestHeaderModifier
                          requestHeaderModifier: {add: [{name: "x a", value: "1"}]}""",
                        "requestHeaderModifier.add[0].name: not a header name: 'x a'"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void filtersBecomeRouteFieldsOrAProblemNamingTheField(String name, String match, String filters, String expected,
            String problem) throws Exception {
        String yaml = """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: r, namespace: shop}
                spec:
                  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
                  rules:
                  - matches: [%s]
                    backendRefs: [{name: reviews-v1, port: 9080}]
                    filters:
                %s
                """.formatted(match, filters.indent(4).stripTrailing());
        MeshInput input = MeshInput.builder().addAll(Fixtures.objects("bookinfo.yaml"))
                .addAll(KubeYaml.parse(yaml, kind -> {
                })).build();
        Translation t = new MeshTranslator().translate(input, 1);
        List<Problem> problems = t.problems().stream().filter(p -> p.resource().equals("HTTPRoute/shop/r")).toList();
        var entry = t.snapshot().resources(ResourceTypes.SERVICE_ROUTES).get(TABLE);
        if (problem != null) {
            assertEquals(1, problems.size(), problems.toString());
            assertTrue(problems.getFirst().reason().contains(problem), problems.getFirst().reason());
            assertNull(entry, "a route with a bad filter is skipped, not half applied");
            return;
        }
        assertTrue(problems.isEmpty(), "no problem expected: " + problems);
        assertNotNull(entry);
        Route route = ((ServiceRoutes) entry.resource()).getRoutes(0);
        Route filterFields = route.toBuilder().clearName().clearMatches().clearBackends().build();
        assertEquals(TextFormat.parse(expected, Route.class), filterFields, name);
    }
}
