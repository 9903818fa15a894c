package dev.ambient.ztunnel.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalConfigFileTest {

    private static final long WAIT_MILLIS = 5_000;

    @TempDir
    Path dir;

    private LocalConfigFile watcher;
    private final WorkloadStore store = new WorkloadStore();

    @AfterEach
    void close() {
        if (watcher != null) {
            watcher.close();
        }
    }

    private static String workloads(String... names) {
        StringBuilder sb = new StringBuilder("workloads:\n");
        for (String n : names) {
            sb.append("- {name: ").append(n).append(", namespace: default}\n");
        }
        return sb.toString();
    }

    private List<String> names() {
        return store.current().workloads().stream().map(w -> w.getName()).toList();
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT_MILLIS * 1_000_000;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within " + WAIT_MILLIS + " ms: " + what);
            }
            Thread.sleep(20);
        }
    }

    private LocalConfigFile start(Path file) throws LocalConfigException {
        watcher = new LocalConfigFile(file, new LocalConfigParser(), store);
        watcher.start();
        return watcher;
    }

    /** Writes to a temporary file in the same directory and renames it over {@code file}. */
    private static void renameOver(Path file, String content) throws IOException {
        Path tmp = Files.createTempFile(file.getParent(), ".edit", ".tmp");
        Files.writeString(tmp, content);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    @Test
    void loadsOnStartThenPicksUpAnInPlaceEdit() throws Exception {
        Path file = dir.resolve("ztunnel.yaml");
        Files.writeString(file, workloads("a"));
        LocalConfigFile w = start(file);
        assertEquals(List.of("a"), names(), "loaded synchronously by start()");
        assertEquals(0, w.reloads());

        Files.writeString(file, workloads("a", "b"));
        await("in-place edit applied", () -> names().equals(List.of("a", "b")));
        assertEquals(1, w.reloads());
        assertEquals(0, w.rejectedReloads());
        assertTrue(w.lastError().isEmpty());
    }

    @Test
    void picksUpARenameOverEdit() throws Exception {
        Path file = dir.resolve("ztunnel.yaml");
        Files.writeString(file, workloads("a"));
        LocalConfigFile w = start(file);

        renameOver(file, workloads("renamed"));
        await("rename-over edit applied", () -> names().equals(List.of("renamed")));
        renameOver(file, workloads("renamed", "again"));
        await("second rename-over edit applied", () -> names().equals(List.of("renamed", "again")));
        assertEquals(2, w.reloads());
    }

    @Test
    void picksUpAConfigMapStyleSymlinkSwap() throws Exception {
        // what the kubelet does for a ConfigMap volume: file -> ..data/file, ..data -> ..<timestamp>
        Path v1 = Files.createDirectory(dir.resolve("..v1"));
        Files.writeString(v1.resolve("ztunnel.yaml"), workloads("one"));
        Files.createSymbolicLink(dir.resolve("..data"), dir.relativize(v1));
        Path file = dir.resolve("ztunnel.yaml");
        Files.createSymbolicLink(file, Path.of("..data", "ztunnel.yaml"));
        LocalConfigFile w = start(file);
        assertEquals(List.of("one"), names());

        Path v2 = Files.createDirectory(dir.resolve("..v2"));
        Files.writeString(v2.resolve("ztunnel.yaml"), workloads("two"));
        Path tmpLink = Files.createSymbolicLink(dir.resolve("..data_tmp"), dir.relativize(v2));
        Files.move(tmpLink, dir.resolve("..data"), StandardCopyOption.REPLACE_EXISTING,
                StandardCopyOption.ATOMIC_MOVE);
        await("symlink swap applied", () -> names().equals(List.of("two")));
        assertEquals(1, w.reloads());
    }

    @Test
    void keepsTheLastGoodStateOnABrokenFileAndRecovers() throws Exception {
        Path file = dir.resolve("ztunnel.yaml");
        Files.writeString(file, workloads("good"));
        LocalConfigFile w = start(file);
        StateSnapshot good = store.current();

        renameOver(file, "workloads:\n- {name: bad, namespace: default, workloadIps: [not-an-ip]}\n");
        await("broken file rejected", () -> w.rejectedReloads() == 1);
        assertEquals(good, store.current(), "last good state kept");
        assertEquals("workloads[0].workloadIps[0]: not an IP address: 'not-an-ip'", w.lastError().orElseThrow());

        Files.writeString(file, "workloads: [\n");
        await("syntax error rejected", () -> w.rejectedReloads() == 2);
        assertTrue(w.lastError().orElseThrow().startsWith("not valid YAML"), w.lastError().orElseThrow());
        assertEquals(List.of("good"), names());

        Files.writeString(file, workloads("fixed"));
        await("fixed file applied", () -> names().equals(List.of("fixed")));
        assertEquals(1, w.reloads());
        assertTrue(w.lastError().isEmpty(), "cleared by a good load");
    }

    @Test
    void aDeletedFileKeepsTheStateUntilItComesBack() throws Exception {
        Path file = dir.resolve("ztunnel.yaml");
        Files.writeString(file, workloads("a"));
        LocalConfigFile w = start(file);

        Files.delete(file);
        await("deletion noticed", () -> w.rejectedReloads() == 1);
        assertEquals("file is missing", w.lastError().orElseThrow());
        assertEquals(List.of("a"), names());

        Files.writeString(file, workloads("b"));
        await("file back", () -> names().equals(List.of("b")));
        assertEquals(1, w.rejectedReloads(), "a missing file is reported once");
    }

    @Test
    void theFirstLoadMustSucceed() throws IOException {
        Path missing = dir.resolve("missing.yaml");
        LocalConfigFile w1 = new LocalConfigFile(missing, new LocalConfigParser(), store);
        LocalConfigException e1 = assertThrows(LocalConfigException.class, w1::start);
        assertEquals(missing.toAbsolutePath() + ": file is missing", e1.getMessage());

        Path broken = dir.resolve("broken.yaml");
        Files.writeString(broken, "services:\n- {name: s, namespace: d, vips: [example.com]}\n");
        LocalConfigFile w2 = new LocalConfigFile(broken, new LocalConfigParser(), store);
        LocalConfigException e2 = assertThrows(LocalConfigException.class, w2::start);
        assertEquals(broken.toAbsolutePath() + ": services[0].vips[0]: not an IP address: 'example.com'",
                e2.getMessage());
        assertEquals(List.of("services[0].vips[0]: not an IP address: 'example.com'"), e2.problems());
        assertEquals(StateSnapshot.EMPTY, store.current(), "nothing applied");
        w2.close();
    }

    @Test
    void pollingAloneNoticesEditsAndRenames() throws Exception {
        Path file = dir.resolve("ztunnel.yaml");
        Files.writeString(file, workloads("a"));
        watcher = new LocalConfigFile(file, new LocalConfigParser(), store, Duration.ofMillis(100), false);
        watcher.start();
        Files.writeString(file, workloads("a", "b"));
        await("in-place edit polled", () -> names().equals(List.of("a", "b")));
        renameOver(file, workloads("c"));
        await("rename-over polled", () -> names().equals(List.of("c")));
        renameOver(file, "workloads: [oops]\n");
        await("broken file polled", () -> watcher.rejectedReloads() == 1);
        assertEquals(List.of("c"), names());
        assertEquals(2, watcher.reloads());
    }

    @Test
    void closeStopsWatching() throws Exception {
        Path file = dir.resolve("ztunnel.yaml");
        Files.writeString(file, workloads("a"));
        watcher = new LocalConfigFile(file, new LocalConfigParser(), store, Duration.ofMillis(50));
        watcher.start();
        watcher.close();
        Files.writeString(file, workloads("b"));
        Thread.sleep(300);
        assertEquals(List.of("a"), names());
        assertEquals(0, watcher.reloads());
        watcher.close(); // idempotent
        assertThrows(IllegalStateException.class, watcher::start);
    }

    @Test
    void listenersSeeEachReload() throws Exception {
        Path file = dir.resolve("ztunnel.yaml");
        Files.writeString(file, workloads("a"));
        List<Integer> sizes = new java.util.concurrent.CopyOnWriteArrayList<>();
        store.addListener(s -> sizes.add(s.workloads().size()));
        start(file);
        Files.writeString(file, workloads("a", "b", "c"));
        await("listener told", () -> sizes.contains(3));
        assertEquals(1, sizes.getFirst(), "the initial load is a swap too");
        assertFalse(sizes.contains(0));
    }
}
