package dev.ambient.xds.source;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.workload.Workload;
import dev.ambient.xds.model.MeshSnapshot;
import dev.ambient.xds.translate.Fixtures;
import dev.ambient.xds.translate.MeshTranslator;
import dev.ambient.xds.translate.Problem;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The mesh in a box: a directory of Kubernetes-style YAML, watched. */
class DirectoryMeshSourceTest {

    static final String PRODUCTPAGE = "Kubernetes//Pod/shop/productpage-v1-7d9f8c6b5-x2k4q";

    @TempDir
    Path dir;

    DirectoryMeshSource source;
    final List<MeshSnapshot> seen = new CopyOnWriteArrayList<>();

    @BeforeEach
    void writeMesh() throws Exception {
        Files.writeString(dir.resolve("bookinfo.yaml"), Fixtures.text("bookinfo.yaml"));
        Files.createDirectories(dir.resolve("security/more"));
        Files.createDirectories(dir.resolve("egress"));
        Files.writeString(dir.resolve("security/more/policies.yml"), Fixtures.text("policies.yaml"));
        Files.writeString(dir.resolve("README.md"), "not yaml: ignored");
        Files.writeString(dir.resolve("egress/serviceentries.yaml"), Fixtures.text("serviceentries.yaml"));
        Files.writeString(dir.resolve("egress/tcp.yaml"), """
                apiVersion: gateway.networking.k8s.io/v1alpha2
                kind: TCPRoute
                metadata: {name: reviews-tcp, namespace: shop}
                spec:
                  parentRefs: [{name: waypoint}]
                  rules: [{backendRefs: [{name: reviews-v2, port: 9080}]}]
                ---
                apiVersion: gateway.networking.k8s.io/v1
                kind: GRPCRoute
                metadata: {name: reviews-grpc, namespace: shop}
                spec:
                  parentRefs: [{name: waypoint}]
                  rules:
                  - matches: [{method: {service: helloworld.Greeter, method: SayHello}}]
                    backendRefs: [{name: reviews-v2, port: 9080}]
                """);
        Files.writeString(dir.resolve("deploy.yaml"), """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: productpage-v1, namespace: shop}
                spec: {replicas: 1}
                """);
    }

    @AfterEach
    void stop() {
        if (source != null) {
            source.close();
        }
    }

    void start() {
        source = new DirectoryMeshSource(dir, new MeshTranslator(), Duration.ofMillis(50), Duration.ofMillis(300));
        source.addListener(seen::add);
        source.start();
        // The first parse in a JVM loads fabric8's model classes: seconds on a busy machine.
        await("synced", () -> source.synced(), Duration.ofSeconds(60));
    }

    static void await(String what, BooleanSupplier condition) {
        await(what, condition, Duration.ofSeconds(10));
    }

    static void await(String what, BooleanSupplier condition, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    Workload productpage() {
        var e = source.current().resources(ResourceTypes.WORKLOAD).get(PRODUCTPAGE);
        return e == null ? null : (Workload) e.resource();
    }

    static ByteString ip(String s) {
        return ByteString.copyFrom(InetAddress.ofLiteral(s).getAddress());
    }

    @Test
    void readsEveryYamlFileRecursivelyAndIgnoresOtherKinds() {
        start();
        MeshSnapshot s = source.current();
        assertTrue(s.resources(ResourceTypes.WORKLOAD).containsKey(PRODUCTPAGE));
        assertTrue(s.resources(ResourceTypes.AUTHORIZATION).containsKey("shop/productpage-viewer"), "from security/more");
        assertTrue(s.resources(ResourceTypes.SERVICE_ROUTES).containsKey("shop/reviews.shop.svc.cluster.local"));
        assertEquals("shop/reviews-tcp", ((ServiceRoutes) s.resources(ResourceTypes.SERVICE_ROUTES)
                .get("shop/reviews.shop.svc.cluster.local").resource()).getTcpRoutes(0).getName(), "a TCPRoute");
        assertEquals("/helloworld.Greeter/SayHello", ((ServiceRoutes) s.resources(ResourceTypes.SERVICE_ROUTES)
                .get("shop/reviews.shop.svc.cluster.local").resource()).getRoutes(0).getMatches(0).getPath().getValue(),
                "a GRPCRoute's exact method comes first");
        assertTrue(s.resources(ResourceTypes.SERVICE).containsKey("egress/db.legacy.example"), "a ServiceEntry host");
        assertEquals(List.of(), source.problems(), "a Deployment is not a problem, just unused");
        assertFalse(seen.isEmpty(), "listeners heard of the first snapshot");
    }

    @Test
    void picksUpAnEditAndKeepsTheLastGoodContentOfABrokenFile() throws Exception {
        start();
        long generation = source.current().generation();
        assertEquals(ip("10.244.1.5"), productpage().getAddresses(0));

        // An edit: the pod moves.
        Files.writeString(dir.resolve("bookinfo.yaml"), Fixtures.text("bookinfo.yaml").replace("10.244.1.5", "10.244.1.55"));
        await("the edit", () -> productpage().getAddresses(0).equals(ip("10.244.1.55")));
        assertTrue(source.current().generation() > generation);
        assertTrue(seen.getLast().resources(ResourceTypes.WORKLOAD).containsKey(PRODUCTPAGE));

        // The policies file breaks: reported with its name; its last good objects still apply.
        Path policies = dir.resolve("security/more/policies.yml");
        Files.writeString(policies, Fixtures.text("policies.yaml").replace("  action: DENY", "  action: [DENY"));
        await("the broken file reported", () -> source.problems().stream()
                .anyMatch(p -> p.resource().equals(Path.of("security/more/policies.yml").toString())));
        Problem p = source.problems().getFirst();
        assertTrue(p.reason().contains("not valid YAML at line"), p.reason());
        assertTrue(p.reason().contains("keeping its last good content"), p.reason());
        assertTrue(source.current().resources(ResourceTypes.AUTHORIZATION).containsKey("shop/deny-legacy"));

        // Meanwhile the other files still apply.
        Files.writeString(dir.resolve("bookinfo.yaml"), Fixtures.text("bookinfo.yaml").replace("10.244.1.5", "10.244.1.56"));
        await("an edit while another file is broken", () -> productpage().getAddresses(0).equals(ip("10.244.1.56")));
        assertTrue(source.current().resources(ResourceTypes.AUTHORIZATION).containsKey("shop/deny-legacy"));

        // Fixed: the problem goes away and the new content applies.
        Files.writeString(policies, Fixtures.text("policies.yaml").replace("name: deny-legacy", "name: deny-old"));
        await("the fix", () -> source.current().resources(ResourceTypes.AUTHORIZATION).containsKey("shop/deny-old"));
        assertFalse(source.current().resources(ResourceTypes.AUTHORIZATION).containsKey("shop/deny-legacy"));
        assertEquals(List.of(), source.problems());

        // A deleted file takes its objects with it.
        Files.delete(policies);
        await("the deletion", () -> source.current().resources(ResourceTypes.AUTHORIZATION).isEmpty());
    }

    @Test
    void aFileBrokenFromTheStartIsReportedAndTheOthersApply() throws Exception {
        Files.writeString(dir.resolve("zz-broken.yaml"), """
                apiVersion: v1
                kind: Pod
                metadata:
                  namespace: shop
                """);
        start();
        assertEquals(1, source.problems().size(), source.problems().toString());
        assertEquals("zz-broken.yaml", source.problems().getFirst().resource());
        assertTrue(source.problems().getFirst().reason().contains("metadata.name is required"));
        assertTrue(source.current().resources(ResourceTypes.WORKLOAD).containsKey(PRODUCTPAGE));
    }

    @Test
    void translationProblemsAreReportedToo() throws Exception {
        Files.writeString(dir.resolve("bad.yaml"), Fixtures.text("bad.yaml"));
        start();
        assertTrue(source.problems().stream().anyMatch(p -> p.resource().equals("AuthorizationPolicy/shop/unknown-action")),
                source.problems().toString());
    }

    @Test
    void unchangedContentIsNotPublishedAgain() throws Exception {
        start();
        int before = seen.size();
        long generation = source.current().generation();
        // Same content, new modification time: re-read, same resources, no new snapshot.
        Files.writeString(dir.resolve("bookinfo.yaml"), Fixtures.text("bookinfo.yaml") + "\n# a comment\n");
        Thread.sleep(800);
        assertEquals(generation, source.current().generation());
        assertEquals(before, seen.size());
    }
}
