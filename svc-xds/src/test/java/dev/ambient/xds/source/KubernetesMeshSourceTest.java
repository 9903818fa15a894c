package dev.ambient.xds.source;

import static dev.ambient.xds.source.DirectoryMeshSourceTest.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.xds.model.MeshModel;
import dev.ambient.xds.model.MeshSnapshot;
import dev.ambient.xds.translate.Fixtures;
import dev.ambient.xds.translate.KubeKind;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.net.InetAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * The Kubernetes source as the application runs it (xds.source defaults to kubernetes), against
 * the fabric8 mock API server in CRUD mode: the same Istio YAML, applied through the API.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true)
@TestProfile(KubernetesMeshSourceTest.Profile.class)
class KubernetesMeshSourceTest {

    /** The waypoint controller stays out of the way; quick recomputation. */
    public static class Profile implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("xds.waypoint.enabled", "false", "xds.debounce", "20ms");
        }
    }

    static final String PRODUCTPAGE = "Kubernetes//Pod/shop/productpage-v1-7d9f8c6b5-x2k4q";

    @Inject
    KubernetesClient client;

    @Inject
    MeshModel model;

    static ByteString ip(String s) {
        return ByteString.copyFrom(InetAddress.ofLiteral(s).getAddress());
    }

    void apply(HasMetadata o) {
        if (o instanceof GenericKubernetesResource g) {
            KubeKind kind = KubeKind.of(g.getApiVersion(), g.getKind()).orElseThrow();
            client.genericKubernetesResources(KubernetesMeshSource.context(kind))
                    .inNamespace(g.getMetadata().getNamespace()).resource(g).createOr(r -> r.update());
        } else {
            client.resource(o).createOr(r -> r.update());
        }
    }

    Workload workload(String uid) {
        MeshSnapshot.Entry e = model.current().resources(ResourceTypes.WORKLOAD).get(uid);
        return e == null ? null : (Workload) e.resource();
    }

    /** The mesh configuration is the ConfigMap "istio" of the root namespace, followed as it changes. */
    @Test
    void extAuthzProvidersFollowTheMeshConfigMap() throws Exception {
        await("synced", model::synced, Duration.ofSeconds(60));
        Fixtures.objects("bookinfo.yaml").forEach(this::apply);
        String mesh = """
                extensionProviders:
                - name: sample-ext-authz-http
                  envoyExtAuthzHttp: {service: ext-authz.shop.svc.cluster.local, port: "8000"}
                """;
        client.resource(new io.fabric8.kubernetes.api.model.ConfigMapBuilder().withNewMetadata().withName("istio")
                .withNamespace("istio-system").endMetadata().addToData("mesh", mesh).build()).createOr(r -> r.update());
        KubeYaml.parse("""
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: ext-authz, namespace: shop}
                spec:
                  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
                  action: CUSTOM
                  provider: {name: sample-ext-authz-http}
                  rules: [{to: [{operation: {paths: ["/headers"]}}]}]
                """, k -> {
        }).forEach(this::apply);
        await("the CUSTOM policy with its provider", () -> {
            var e = model.current().resources(ResourceTypes.L7_AUTHORIZATION).get("shop/ext-authz");
            return e != null && ((dev.ambient.proto.l7.L7Authorization) e.resource()).getProvider().getName()
                    .equals("sample-ext-authz-http");
        });
        client.configMaps().inNamespace("istio-system").withName("istio")
                .edit(cm -> new io.fabric8.kubernetes.api.model.ConfigMapBuilder(cm).addToData("mesh", "{}").build());
        await("the provider gone: the policy denies what it matched", () -> ((dev.ambient.proto.l7.L7Authorization) model
                .current().resources(ResourceTypes.L7_AUTHORIZATION).get("shop/ext-authz").resource()).getAction()
                == dev.ambient.proto.workload.Action.DENY);
        client.configMaps().inNamespace("istio-system").withName("istio").delete();
        client.genericKubernetesResources(KubernetesMeshSource.context(KubeKind.AUTHORIZATION_POLICY))
                .inNamespace("shop").withName("ext-authz").delete();
    }

    @Test
    void theMeshFollowsTheApiServer() {
        assertInstanceOf(KubernetesMeshSource.class, model, "xds.source defaults to kubernetes");
        await("synced (all informers listed, absent CRDs counted as empty)", model::synced, Duration.ofSeconds(60));
        List<MeshSnapshot> seen = new CopyOnWriteArrayList<>();
        model.addListener(seen::add);

        Fixtures.objects("bookinfo.yaml", "policies.yaml").forEach(this::apply);
        await("the workloads, policies and routes", () -> workload(PRODUCTPAGE) != null
                && model.current().resources(ResourceTypes.SERVICE_ROUTES).containsKey("shop/reviews.shop.svc.cluster.local")
                && model.current().resources(ResourceTypes.AUTHORIZATION).containsKey("shop/productpage-viewer")
                && model.current().resources(ResourceTypes.L7_AUTHORIZATION).containsKey("shop/reviews-readers"));
        await("the waypoint", () -> workload(PRODUCTPAGE).hasWaypoint());

        Workload pp = workload(PRODUCTPAGE);
        assertEquals(TunnelProtocol.HBONE, pp.getTunnelProtocol());
        assertEquals(ip("10.244.1.5"), pp.getAddresses(0), "the pod's status as written");
        assertEquals("waypoint.shop.svc.cluster.local", pp.getWaypoint().getHostname().getHostname());
        Authorization viewer = (Authorization) model.current().resources(ResourceTypes.AUTHORIZATION)
                .get("shop/productpage-viewer").resource();
        assertEquals(Scope.WORKLOAD_SELECTOR, viewer.getScope());
        assertEquals(List.of(PRODUCTPAGE), viewer.getSelectedWorkloadsList());
        ServiceRoutes routes = (ServiceRoutes) model.current().resources(ResourceTypes.SERVICE_ROUTES)
                .get("shop/reviews.shop.svc.cluster.local").resource();
        assertEquals(List.of(90, 10), routes.getRoutes(1).getBackendsList().stream().map(WeightedBackend::getWeight)
                .toList());
        assertTrue(!seen.isEmpty(), "listeners heard of the changes");

        // A pod that moves, a pod that goes: the snapshot follows.
        Pod moved = client.pods().inNamespace("shop").withName("productpage-v1-7d9f8c6b5-x2k4q").get();
        moved.getStatus().setPodIP("10.244.1.77");
        moved.getStatus().getPodIPs().getFirst().setIp("10.244.1.77");
        client.resource(moved).update();
        await("the moved pod", () -> ip("10.244.1.77").equals(workload(PRODUCTPAGE).getAddresses(0)));

        client.pods().inNamespace("shop").withName("productpage-v1-7d9f8c6b5-x2k4q").delete();
        await("the deleted pod", () -> workload(PRODUCTPAGE) == null);
        await("the policy selects nobody now", () -> ((Authorization) model.current()
                .resources(ResourceTypes.AUTHORIZATION).get("shop/productpage-viewer").resource())
                .getSelectedWorkloadsCount() == 0);

        // ServiceEntries through the API: one service per host, the endpoints as workloads.
        Fixtures.objects("serviceentries.yaml").forEach(this::apply);
        await("the ServiceEntry hosts", () -> model.current().resources(ResourceTypes.SERVICE)
                .containsKey("egress/api.example.com")
                && model.current().resources(ResourceTypes.WORKLOAD)
                        .containsKey("Kubernetes/networking.istio.io/ServiceEntry/egress/legacy-db/198.51.100.8"));
        var api = (dev.ambient.proto.workload.Service) model.current().resources(ResourceTypes.SERVICE)
                .get("egress/api.example.com").resource();
        assertEquals("egress-waypoint.egress.svc.cluster.local", api.getWaypoint().getHostname().getHostname());
        assertEquals(240, api.getAddresses(0).getAddress().byteAt(0) & 0xff, "auto-allocated");
        client.genericKubernetesResources(KubernetesMeshSource.context(KubeKind.SERVICE_ENTRY)).inNamespace("egress")
                .withName("example-api").delete();
        await("the deleted entry", () -> !model.current().resources(ResourceTypes.SERVICE)
                .containsKey("egress/api.example.com"));

        // TCPRoutes (v1alpha2) through the API: weighted TCP backends in the service's table.
        Fixtures.objects("tcproutes.yaml").forEach(this::apply);
        await("the TCPRoute", () -> {
            var e = model.current().resources(ResourceTypes.SERVICE_ROUTES).get("shop/reviews.shop.svc.cluster.local");
            return e != null && ((ServiceRoutes) e.resource()).getTcpRoutesList().stream()
                    .anyMatch(r -> r.getName().equals("shop/whole-waypoint"));
        });
        for (String name : List.of("ratings-split", "two-rules", "with-matches", "whole-waypoint")) {
            client.genericKubernetesResources(KubernetesMeshSource.context(KubeKind.TCP_ROUTE)).inNamespace("shop")
                    .withName(name).delete();
        }
        await("the deleted TCPRoutes", () -> ((ServiceRoutes) model.current().resources(ResourceTypes.SERVICE_ROUTES)
                .get("shop/reviews.shop.svc.cluster.local").resource()).getTcpRoutesCount() == 0);

        // A generic resource deleted through the API.
        client.genericKubernetesResources(KubernetesMeshSource.context(KubeKind.HTTP_ROUTE)).inNamespace("shop")
                .withName("reviews").delete();
        await("the deleted route", () -> model.current().resources(ResourceTypes.SERVICE_ROUTES).isEmpty());
    }
}
