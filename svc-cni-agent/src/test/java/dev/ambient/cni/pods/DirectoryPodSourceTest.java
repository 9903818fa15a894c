package dev.ambient.cni.pods;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The mesh-in-a-box source: YAML files in, pods and namespaces out; a broken file keeps its last good content. */
@Timeout(30)
class DirectoryPodSourceTest {

    @TempDir
    Path dir;

    @Test
    void readsPodsAndNamespacesAndKeepsTheLastGoodContentOfABrokenFile() throws Exception {
        Files.writeString(dir.resolve("ns.yaml"), """
                apiVersion: v1
                kind: Namespace
                metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
                """);
        Files.writeString(dir.resolve("pods.yaml"), """
                apiVersion: v1
                kind: Pod
                metadata: {name: cart, namespace: shop, uid: u1}
                spec: {nodeName: node-a, containers: [{name: c, image: x}]}
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: ignored}
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: far, uid: u2}
                spec: {nodeName: node-b, containers: [{name: c, image: x}]}
                """);
        AtomicInteger changes = new AtomicInteger();
        try (DirectoryPodSource s = new DirectoryPodSource(dir, Duration.ofMillis(200))) {
            s.start(changes::incrementAndGet);
            waitFor(s::synced);
            assertEquals(1, s.podsOn("node-a").size());
            assertEquals("default", s.podsOn("node-b").getFirst().getMetadata().getNamespace());
            assertEquals("ambient", s.namespace("shop").orElseThrow().getMetadata().getLabels()
                    .get("istio.io/dataplane-mode"));
            assertTrue(s.pod("shop", "cart").isPresent());

            Files.writeString(dir.resolve("pods.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: [broken\n");
            waitFor(() -> !s.problems().isEmpty());
            assertTrue(s.problems().values().iterator().next().contains("not valid YAML"), s.problems().toString());
            assertTrue(s.pod("shop", "cart").isPresent(), "last good content kept");

            Files.delete(dir.resolve("pods.yaml"));
            waitFor(() -> s.pod("shop", "cart").isEmpty());
        }
    }

    static void waitFor(java.util.function.BooleanSupplier c) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("not within 10 s");
            }
            Thread.sleep(20);
        }
    }
}
