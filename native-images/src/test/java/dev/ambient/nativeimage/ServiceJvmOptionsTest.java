package dev.ambient.nativeimage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A service's own JVM options (the {@code JDK_JAVA_OPTIONS} of its manifest, which the java launcher
 * itself reads, before the image's {@code JAVA_OPTS}) leave the image's AOT cache usable: a cache is
 * trained with the pods' common {@code JAVA_OPTS} only (as images/build.sh trains), then a JVM started
 * with those plus one option of every kind {@link K8sJvmOptionsTest#SERVICE_OWN} allows (and the
 * ztunnel's own, when its DaemonSet sets any) and {@code -XX:AOTMode=on}, which refuses to start when
 * it cannot use the cache, must run and say it uses the cache's linked classes.
 */
class ServiceJvmOptionsTest {

    private static final Path DAEMONSET = NativeSources.repo().resolve("k8s/ztunnel/daemonset.yaml");

    /** One option of each kind {@link K8sJvmOptionsTest#SERVICE_OWN} allows. */
    static final String EVERY_KIND = "-Xmx128m -Xms16m -Xmn8m -Xss512k -XX:NewSize=4m -XX:MaxNewSize=8m"
            + " -XX:ReservedCodeCacheSize=48m -XX:MaxDirectMemorySize=64m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20"
            + " -XX:CICompilerCount=2 -Dio.netty.allocator.numDirectArenas=1";

    @Test
    void everyOptionAServiceMayAddKeepsTheImagesAotCacheInUse(@TempDir Path dir) throws Exception {
        String javaOpts = K8sJvmOptionsTest.envValue(Files.readString(DAEMONSET), "JAVA_OPTS");
        K8sJvmOptionsTest.assertOwnOptions("", EVERY_KIND, javaOpts);
        assertCacheUsed(dir, train(dir), EVERY_KIND);
    }

    @Test
    void ztunnelsOwnOptionsKeepTheImagesAotCacheInUse(@TempDir Path dir) throws Exception {
        String daemonset = Files.readString(DAEMONSET);
        Assumptions.assumeTrue(daemonset.contains("name: JDK_JAVA_OPTIONS"), "the DaemonSet adds no options of its own");
        assertCacheUsed(dir, train(dir), K8sJvmOptionsTest.envValue(daemonset, "JDK_JAVA_OPTIONS"));
    }

    private static void assertCacheUsed(Path dir, Path cache, String own) throws Exception {
        Run run = run(dir, cache, own);
        assertEquals(0, run.exit, "a JVM with these options refused the cache:\n" + run.output);
        assertTrue(run.output.contains("Picked up JDK_JAVA_OPTIONS: " + own), run.output);
        assertTrue(run.output.contains("Using AOT-linked classes: true"), run.output);
        assertTrue(run.output.contains("trained and run"), run.output);
    }

    /** The check above can fail: a module option in the same place makes the cache unusable. */
    @Test
    void aModuleOptionThereWouldBeRefused(@TempDir Path dir) throws Exception {
        Path cache = train(dir);
        Run run = run(dir, cache, "--add-modules=jdk.net");
        assertNotEquals(0, run.exit, run.output);
        assertTrue(run.output.contains("Mismatched values for property jdk.module.addmods"), run.output);
    }

    private record Run(int exit, String output) {}

    /** The pods' options as the image's training run has them, and the pod's memory limit. */
    private static List<String> podOptions() throws IOException {
        String daemonset = Files.readString(DAEMONSET);
        List<String> opts = new ArrayList<>(Arrays.asList(K8sJvmOptionsTest.envValue(daemonset, "JAVA_OPTS").split("\\s+")));
        assertTrue(opts.remove("-XX:AOTCache=/deployments/app.aot"), opts.toString());
        Matcher limit = Pattern.compile("limits:\\s*\\n\\s*memory: (\\d+)Mi").matcher(daemonset);
        assertTrue(limit.find(), "no memory limit in " + DAEMONSET);
        opts.add("-XX:MaxRAM=" + limit.group(1) + "m");
        return opts;
    }

    private static Path train(Path dir) throws Exception {
        Path src = dir.resolve("Probe.java");
        Files.writeString(src, """
                public class Probe {
                    public static void main(String[] args) {
                        System.out.println("trained and run " + java.util.List.of(args).size());
                    }
                }
                """);
        Path classes = Files.createDirectories(dir.resolve("classes"));
        assertEquals(0, ToolProvider.getSystemJavaCompiler().run(null, null, null, "-d", classes.toString(), src.toString()));
        // An AOT cache takes its classes from jars only, as the image's do.
        try (JarOutputStream jar = new JarOutputStream(Files.newOutputStream(dir.resolve("probe.jar")))) {
            jar.putNextEntry(new JarEntry("Probe.class"));
            jar.write(Files.readAllBytes(classes.resolve("Probe.class")));
            jar.closeEntry();
        }
        Path cache = dir.resolve("app.aot");
        List<String> cmd = java(podOptions());
        cmd.addAll(List.of("-XX:AOTCacheOutput=" + cache, "-cp", dir.resolve("probe.jar").toString(), "Probe"));
        Run training = exec(cmd, null);
        assertEquals(0, training.exit, training.output);
        assertTrue(Files.size(cache) > 0, training.output);
        return cache;
    }

    private static Run run(Path dir, Path cache, String jdkJavaOptions) throws Exception {
        List<String> cmd = java(podOptions());
        cmd.addAll(List.of("-XX:AOTCache=" + cache, "-XX:AOTMode=on", "-Xlog:aot", "-cp", dir.resolve("probe.jar").toString(), "Probe"));
        return exec(cmd, jdkJavaOptions);
    }

    private static List<String> java(List<String> options) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(options);
        return cmd;
    }

    private static Run exec(List<String> cmd, String jdkJavaOptions) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().remove("JDK_JAVA_OPTIONS");
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        if (jdkJavaOptions != null) {
            pb.environment().put("JDK_JAVA_OPTIONS", jdkJavaOptions);
        }
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "java did not end: " + cmd);
        return new Run(p.exitValue(), String.join(" ", cmd) + "\n" + new String(out, StandardCharsets.UTF_8));
    }
}
