package dev.ambient.nativeimage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.nativeimage.fixtures.EagerDowncall;
import dev.ambient.nativeimage.fixtures.LazyDowncall;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The check can fail: it sees descriptors built through helpers, and notices what it cannot see. */
class DowncallProbeTest {

    private static final List<URL> TEST_CLASSES =
            List.of(EagerDowncall.class.getProtectionDomain().getCodeSource().getLocation());

    @Test
    void readsTheDescriptorsAStaticInitializerCreates() {
        Set<String> created = DowncallProbe.downcallsCreatedBy(EagerDowncall.class.getName(), TEST_CLASSES);
        assertEquals(Set.of("long(void*)", "int() captureCallState"), created);
    }

    @Test
    void aClassCreatingHandlesLaterShowsNone() throws IOException {
        assertEquals(Set.of(), DowncallProbe.downcallsCreatedBy(LazyDowncall.class.getName(), TEST_CLASSES));
        ClassScan scan = ClassScan.of(bytes(LazyDowncall.class));
        assertEquals(List.of(LazyDowncall.class.getName() + ".getpid"), scan.downcallSites());
    }

    @Test
    void findsResourcesReadByConstantName() throws IOException {
        ClassScan scan = ClassScan.of(bytes(LazyDowncall.class));
        assertEquals(Set.of("dev/ambient/nativeimage/fixtures/defaults.yaml"), scan.resourceLookups());
        assertTrue(ClassScan.of(bytes(EagerDowncall.class)).resourceLookups().isEmpty());
    }

    @Test
    void findsRandomMadeInAStaticInitializer() throws IOException {
        assertEquals(List.of("new java.security.SecureRandom"), ClassScan.of(bytes(LazyDowncall.class)).staticInitHazards());
        assertEquals(List.of(), ClassScan.of(bytes(EagerDowncall.class)).staticInitHazards());
    }

    private static byte[] bytes(Class<?> c) throws IOException {
        try (InputStream in = c.getResourceAsStream(c.getSimpleName() + ".class")) {
            return in.readAllBytes();
        }
    }
}
