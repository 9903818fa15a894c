package dev.ambient.nativeimage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every JVM in k8s/ starts with the AOT cache the image carries, and with one set of options: a
 * cache is used only by a JVM started with the options it was trained with (module options, object
 * header layout, GC), so one training recipe (native-images/README.md) must fit every service, and
 * the images are trained with exactly these options; so are the waypoints xds's controller creates.
 *
 * <p>What may differ per service: a manifest may add {@code JDK_JAVA_OPTIONS} (read by the java
 * launcher itself, placed before the image's {@code JAVA_OPTS}) with options that only size memory
 * and threads ({@link #SERVICE_OWN}: heap and young generation, free ratios, thread stacks, code
 * cache, compiler threads, Netty's allocator properties). None of them is checked against the
 * training, which {@code ServiceJvmOptionsTest} shows by starting with the ztunnel's own options
 * and {@code -XX:AOTMode=on}. An option {@code JAVA_OPTS} already sets is refused there: the later
 * {@code JAVA_OPTS} would silently win.
 */
class K8sJvmOptionsTest {

    /** One option a service may add for itself: it sizes memory or threads and leaves the cache valid. */
    static final Pattern SERVICE_OWN = Pattern.compile(
            "-X(mx|ms|mn|ss)\\d+[kmg]"
                    + "|-XX:(NewSize|MaxNewSize|ReservedCodeCacheSize|MaxDirectMemorySize)=\\d+[kmg]"
                    + "|-XX:(MinHeapFreeRatio|MaxHeapFreeRatio|CICompilerCount)=\\d+"
                    + "|-Dio\\.netty\\.allocator\\.[A-Za-z]+=\\w+");

    private static final Pattern BLOCK = Pattern.compile("name: JAVA_OPTS\\s*\\n\\s*value: \"?([^\"\\n]*)\"?");
    private static final Pattern FLOW = Pattern.compile("\\{name: JAVA_OPTS, value: \"([^\"]*)\"}");

    @Test
    void everyJvmUsesTheImagesAotCacheWithTheSameOptions() throws IOException {
        Map<String, String> options = new TreeMap<>();
        try (Stream<Path> files = Files.walk(NativeSources.repo().resolve("k8s"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).toList()) {
                String text = Files.readString(f);
                for (Pattern p : new Pattern[] {BLOCK, FLOW}) {
                    Matcher m = p.matcher(text);
                    while (m.find()) {
                        options.put(NativeSources.repo().relativize(f) + "@" + m.start(), m.group(1).trim());
                    }
                }
            }
        }
        assertFalse(options.isEmpty(), "no JAVA_OPTS found under k8s/");
        for (var e : options.entrySet()) {
            assertTrue(e.getValue().contains("-XX:AOTCache=/deployments/app.aot"), e.getKey() + ": " + e.getValue());
        }
        assertEquals(1, options.values().stream().distinct().count(),
                "JAVA_OPTS differ, so one trained cache cannot fit them all: " + options);
        String pods = options.values().iterator().next();
        assertEquals(pods, quoted(NativeSources.repo().resolve("native-images/images/build.sh"), "java_opts=\"([^\"]*)\""),
                "the images' training (build.sh) runs with other options than the pods");
        assertEquals(pods, quoted(NativeSources.repo().resolve("svc-xds/src/main/java/dev/ambient/xds/waypoint/WaypointObjects.java"),
                "String JAVA_OPTS = \"([^\"]*)\""), "xds's waypoint Deployments run with other options than k8s/");
    }

    @Test
    void aServicesOwnOptionsOnlySizeMemoryAndThreads() throws IOException {
        try (Stream<Path> files = Files.walk(NativeSources.repo().resolve("k8s"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).toList()) {
                String text = Files.readString(f);
                assertFalse(text.contains("JAVA_TOOL_OPTIONS"), f + ": a service's own options go in JDK_JAVA_OPTIONS");
                if (!text.contains("name: JDK_JAVA_OPTIONS")) {
                    continue;
                }
                assertOwnOptions(f + ": ", envValue(text, "JDK_JAVA_OPTIONS"), envValue(text, "JAVA_OPTS"));
            }
        }
    }

    /** Fails unless every one of a service's own options is in {@link #SERVICE_OWN} and not in its JAVA_OPTS. */
    static void assertOwnOptions(String where, String own, String javaOpts) {
        List<String> common = List.of(javaOpts.split("\\s+"));
        for (String option : own.trim().split("\\s+")) {
            assertTrue(SERVICE_OWN.matcher(option).matches(),
                    where + option + " may change what the AOT cache was trained with; allowed: " + SERVICE_OWN);
            String name = option.replaceFirst("^(-X(mx|ms|mn|ss)|[^=]*=).*$", "$1");
            assertTrue(common.stream().noneMatch(o -> o.startsWith(name)),
                    where + option + " is in JAVA_OPTS too, which come later and win");
        }
    }

    /** The value of an environment variable in a manifest's block form ({@code - name: X / value: Y}). */
    static String envValue(String manifest, String name) {
        Matcher m = Pattern.compile("name: " + name + "\\s*\\n\\s*value: \"?([^\"\\n]*)\"?").matcher(manifest);
        assertTrue(m.find(), "no " + name + " in the manifest");
        return m.group(1).trim();
    }

    private static String quoted(Path file, String regex) throws IOException {
        Matcher m = Pattern.compile(regex).matcher(Files.readString(file));
        assertTrue(m.find(), file + " has no " + regex);
        return m.group(1);
    }
}
