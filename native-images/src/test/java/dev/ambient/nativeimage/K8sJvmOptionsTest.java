package dev.ambient.nativeimage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every JVM in k8s/ starts with the AOT cache the image carries, and with one set of options: a
 * cache is used only by a JVM started with the options it was trained with (module options, object
 * header layout), so one training recipe (native-images/README.md) must fit every service, and the
 * images are trained with exactly these options; so are the waypoints xds's controller creates.
 */
class K8sJvmOptionsTest {

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

    private static String quoted(Path file, String regex) throws IOException {
        Matcher m = Pattern.compile(regex).matcher(Files.readString(file));
        assertTrue(m.find(), file + " has no " + regex);
        return m.group(1);
    }
}
