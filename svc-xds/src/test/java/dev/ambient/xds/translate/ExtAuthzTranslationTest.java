package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.ExtAuthzGrpc;
import dev.ambient.proto.l7.ExtAuthzProvider;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.xds.source.KubeYaml;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * AuthorizationPolicy action CUSTOM and the mesh configuration's ext_authz providers, written as
 * Istio's ext-authz task writes them (the ConfigMap {@code istio} of istio-system with
 * {@code extensionProviders}, a CUSTOM policy on the waypoint naming one, rules on paths).
 */
class ExtAuthzTranslationTest {

    /** Istio's ext-authz task's mesh configuration, unchanged but for the authorizer's namespace (shop). */
    static final String MESH_CONFIG = """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: istio
              namespace: istio-system
            data:
              mesh: |-
                # Add the following content to define the external authorizers.
                extensionProviders:
                - name: "sample-ext-authz-grpc"
                  envoyExtAuthzGrpc:
                    service: "ext-authz.shop.svc.cluster.local"
                    port: "9000"
                - name: "sample-ext-authz-http"
                  envoyExtAuthzHttp:
                    service: "ext-authz.shop.svc.cluster.local"
                    port: "8000"
                    includeRequestHeadersInCheck: ["x-ext-authz"]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: ext-authz, namespace: shop}
            spec:
              selector: {app: ext-authz}
              ports:
              - {name: http, port: 8000}
              - {name: grpc, port: 9000}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: ext-authz-0, namespace: shop, labels: {app: ext-authz}}
            spec:
              nodeName: node-a
              containers:
              - name: ext-authz
                ports: [{containerPort: 8000}, {containerPort: 9000}]
            status:
              phase: Running
              podIP: 10.244.3.3
              conditions: [{type: Ready, status: "True"}]
            """;

    /** The task's policy, in its ambient form (targetRefs to the waypoint). */
    static final String POLICY = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: ext-authz
              namespace: shop
            spec:
              targetRefs:
              - kind: Gateway
                group: gateway.networking.k8s.io
                name: waypoint
              action: CUSTOM
              provider:
                # The provider name must match the extension provider defined in the mesh config.
                name: %s
              rules:
              # The rules specify when to trigger the external authorizer.
              - to:
                - operation:
                    paths: ["/headers"]
            """;

    static Translation translate(String... yaml) throws Exception {
        MeshInput.Builder b = MeshInput.builder().addAll(Fixtures.objects("bookinfo.yaml"));
        for (String y : yaml) {
            b.addAll(KubeYaml.parse(y, kind -> {
            }));
        }
        return new MeshTranslator().translate(b.build(), 1);
    }

    static L7Authorization l7(Translation t, String name) {
        var e = t.snapshot().resources(ResourceTypes.L7_AUTHORIZATION).get(name);
        return e == null ? null : (L7Authorization) e.resource();
    }

    static List<Problem> problems(Translation t, String resource) {
        return t.problems().stream().filter(p -> p.resource().equals(resource)).toList();
    }

    @Test
    void istioTasksHttpProviderAndPolicyAreAcceptedUnchanged() throws Exception {
        Translation t = translate(MESH_CONFIG, POLICY.formatted("sample-ext-authz-http"));
        L7Authorization p = l7(t, "shop/ext-authz");
        assertNotNull(p, t.problems().toString());
        assertTrue(problems(t, "AuthorizationPolicy/shop/ext-authz").isEmpty(), t.problems().toString());
        assertTrue(problems(t, "ConfigMap/istio-system/istio").isEmpty(), t.problems().toString());
        assertEquals(Action.CUSTOM, p.getAction());
        assertEquals("/headers", p.getRules(0).getTo(0).getPaths(0).getExact());
        ExtAuthzProvider provider = p.getProvider();
        assertEquals("sample-ext-authz-http", provider.getName());
        assertEquals(8000, provider.getPort());
        assertTrue(provider.hasHttp());
        assertEquals("x-ext-authz", provider.getHttp().getIncludeRequestHeadersInCheck(0).getExact());
        assertTrue(provider.getMeshService());
        assertEquals(List.of("10.244.3.3:8000"), provider.getEndpointsList(), "resolved to the pod, not a VIP");
        assertEquals(Map.of("10.244.3.3:8000", "spiffe://cluster.local/ns/shop/sa/default"),
                provider.getHboneIdentitiesMap(), "a pod of an ambient namespace is reached through HBONE, as itself");
        assertEquals(600_000, provider.getTimeoutMs(), "Istio's default timeout");
        assertFalse(provider.getFailOpen());
    }

    @Test
    void istioTasksGrpcProviderIsAccepted() throws Exception {
        Translation t = translate(MESH_CONFIG, POLICY.formatted("sample-ext-authz-grpc"));
        ExtAuthzProvider provider = l7(t, "shop/ext-authz").getProvider();
        assertTrue(provider.hasGrpc());
        assertEquals(List.of("10.244.3.3:9000"), provider.getEndpointsList());
    }

    @Test
    void anAuthorizerOutsideTheMeshHasNoHboneIdentityAndIsDialledDirectly() throws Exception {
        String legacy = MESH_CONFIG.replace("namespace: shop", "namespace: legacy")
                .replace("ext-authz.shop.svc", "ext-authz.legacy.svc");
        Translation t = translate(legacy, POLICY.formatted("sample-ext-authz-http"));
        ExtAuthzProvider provider = l7(t, "shop/ext-authz").getProvider();
        assertEquals(List.of("10.244.3.3:8000"), provider.getEndpointsList());
        assertTrue(provider.getHboneIdentitiesMap().isEmpty(), "legacy is not in the ambient mesh: "
                + provider.getHboneIdentitiesMap());
    }

    @Test
    void anUnknownProviderDeniesWhatItsRulesMatch() throws Exception {
        Translation t = translate(MESH_CONFIG, POLICY.formatted("nobody"));
        L7Authorization p = l7(t, "shop/ext-authz");
        assertEquals(Action.DENY, p.getAction(), "fail closed");
        assertEquals(1, p.getRulesCount());
        assertTrue(problems(t, "AuthorizationPolicy/shop/ext-authz").getFirst().reason()
                .contains("no ext_authz provider 'nobody'"), t.problems().toString());
    }

    @Test
    void withoutAWaypointCustomDeniesAtTheZtunnel() throws Exception {
        String workloadPolicy = """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: ext-authz, namespace: shop}
                spec:
                  selector: {matchLabels: {app: productpage}}
                  action: CUSTOM
                  provider: {name: sample-ext-authz-http}
                  rules:
                  - from: [{source: {namespaces: [legacy]}}]
                """;
        Translation t = translate(MESH_CONFIG, workloadPolicy);
        var e = t.snapshot().resources(ResourceTypes.AUTHORIZATION).get("shop/ext-authz");
        assertNotNull(e, t.problems().toString());
        Authorization a = (Authorization) e.resource();
        assertEquals(Action.DENY, a.getAction());
        assertEquals(1, a.getRulesCount());
        assertTrue(problems(t, "AuthorizationPolicy/shop/ext-authz").getFirst().reason().contains("needs a waypoint"));
    }

    @Test
    void customNeedsAProviderAndOnlyCustomTakesOne() throws Exception {
        String noProvider = POLICY.formatted("x").replaceAll("(?s)  provider:.*?name: x\n", "");
        Translation none = translate(MESH_CONFIG, noProvider);
        assertNull(l7(none, "shop/ext-authz"));
        assertTrue(problems(none, "AuthorizationPolicy/shop/ext-authz").getFirst().reason()
                .contains("spec.provider.name: required"), none.problems().toString());
        String allowWithProvider = POLICY.formatted("sample-ext-authz-http").replace("action: CUSTOM", "action: ALLOW");
        Translation t = translate(MESH_CONFIG, allowWithProvider);
        assertNull(l7(t, "shop/ext-authz"));
        assertTrue(problems(t, "AuthorizationPolicy/shop/ext-authz").getFirst().reason().contains("only with action CUSTOM"));
    }

    @Test
    void badProviderFieldsAreReportedOneByOneAndLeaveTheProviderOut() throws Exception {
        String bad = """
                extensionProviders:
                - name: a
                  envoyExtAuthzHttp: {service: x.shop.svc.cluster.local, port: 70000}
                - name: b
                  envoyExtAuthzHttp: {service: x.shop.svc.cluster.local, port: 80, timeout: soon}
                - name: c
                  envoyExtAuthzHttp: {service: x.shop.svc.cluster.local, port: 80, statusOnError: "99"}
                - name: d
                  envoyExtAuthzHttp: {service: x.shop.svc.cluster.local, port: 80, includeRequestHeadersInCheck: ["bad name"]}
                - name: e
                  envoyExtAuthzHttp:
                    service: x.shop.svc.cluster.local
                    port: 80
                    includeRequestBodyInCheck: {maxRequestBytes: 99999999}
                - name: f
                  envoyExtAuthzGrpc: {service: x.shop.svc.cluster.local, port: 80, failOpen: "yes"}
                - name: g
                  envoyExtAuthzGrpc: {port: 80}
                - name: g2
                  envoyExtAuthzGrpc:
                    service: x.shop.svc.cluster.local
                    port: 80
                    includeRequestBodyInCheck: {maxRequestBytes: 0}
                - name: grpc-body
                  envoyExtAuthzGrpc:
                    service: x.shop.svc.cluster.local
                    port: 80
                    includeRequestBodyInCheck: {maxRequestBytes: 8192, packAsBytes: true}
                - name: h
                  envoyExtAuthzHttp: {service: x.shop.svc.cluster.local, port: 80, pathPrefix: "no-slash"}
                - name: i
                  envoyExtAuthzHttp: {service: x.shop.svc.cluster.local, port: 80, headerz: [a]}
                - name: good
                  envoyExtAuthzHttp:
                    service: x.shop.svc.cluster.local
                    port: 80
                    timeout: 0.25s
                    failOpen: true
                    statusOnError: "503"
                    pathPrefix: /check
                    headersToUpstreamOnAllow: [x-user, "x-auth-*"]
                    headersToDownstreamOnDeny: [x-reason]
                    includeAdditionalHeadersInCheck: {X-From: waypoint}
                    includeRequestBodyInCheck: {maxRequestBytes: 4096, allowPartialMessage: true}
                - name: tracing
                  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
                """;
        MeshConfig c = MeshConfig.parse(bad);
        assertEquals(java.util.Set.of("good", "grpc-body"), c.providers().keySet(), c.problems().toString());
        String all = String.join("\n", c.problems());
        assertEquals(10, c.problems().size(), all);
        for (String expected : List.of("(a).envoyExtAuthzHttp.port", "(b).envoyExtAuthzHttp.timeout",
                "(c).envoyExtAuthzHttp.statusOnError", "(d).envoyExtAuthzHttp.includeRequestHeadersInCheck[0]",
                "(e).envoyExtAuthzHttp.includeRequestBodyInCheck.maxRequestBytes", "(f).envoyExtAuthzGrpc.failOpen",
                "(g).envoyExtAuthzGrpc.service", "(g2).envoyExtAuthzGrpc.includeRequestBodyInCheck.maxRequestBytes",
                "(h).envoyExtAuthzHttp.pathPrefix", "(i).envoyExtAuthzHttp.headerz")) {
            assertTrue(all.contains(expected), expected + " in " + all);
        }
        ExtAuthzProvider good = c.providers().get("good");
        assertEquals(250, good.getTimeoutMs());
        assertTrue(good.getFailOpen());
        assertEquals(503, good.getStatusOnError());
        assertEquals("/check", good.getHttp().getPathPrefix());
        assertEquals("x-auth-", good.getHttp().getHeadersToUpstreamOnAllow(1).getPrefix());
        assertEquals("waypoint", good.getHttp().getIncludeAdditionalHeadersInCheckMap().get("x-from"));
        assertEquals(4096, good.getHttp().getMaxRequestBytes());
        assertTrue(good.getHttp().getAllowPartialMessage());
        assertFalse(all.contains("does not send request bodies"), "the waypoint sends them now: " + all);
        ExtAuthzGrpc grpcBody = c.providers().get("grpc-body").getGrpc();
        assertEquals(8192, grpcBody.getMaxRequestBytes(), "a gRPC provider's body setting is carried too");
        assertFalse(grpcBody.getAllowPartialMessage());
        assertTrue(grpcBody.getPackAsBytes());
    }

    @Test
    void aBrokenMeshConfigurationIsReportedAgainstTheConfigMap() throws Exception {
        String cm = """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: istio, namespace: istio-system}
                data:
                  mesh: "extensionProviders: [unclosed"
                """;
        Translation t = translate(cm, POLICY.formatted("sample-ext-authz-http"));
        assertFalse(problems(t, "ConfigMap/istio-system/istio").isEmpty(), t.problems().toString());
        assertEquals(Action.DENY, l7(t, "shop/ext-authz").getAction());
        // Another namespace's "istio" ConfigMap is not the mesh configuration.
        Translation other = translate(MESH_CONFIG.replace("namespace: istio-system", "namespace: shop"),
                POLICY.formatted("sample-ext-authz-http"));
        assertEquals(Action.DENY, l7(other, "shop/ext-authz").getAction());
    }
}
