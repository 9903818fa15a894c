package dev.ambient.nativeimage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Reads what each service's sources-only native build would hand to native-image and checks
 * that our configuration is in it: FFM downcalls registered and their classes initialized at run
 * time, FFM support on, Netty's epoll transport packaged with its native library and
 * configuration, BoringSSL accounted for, and every classpath resource our code reads included.
 * native-images/README.md says where each piece lives and why.
 */
@Timeout(120)
class NativeImageConfigurationTest {

    static final List<String> SERVICES = NativeSources.SERVICES;

    @ParameterizedTest
    @FieldSource("SERVICES")
    void nativeSourcesAreComplete(String service) throws Exception {
        NativeSources n = NativeSources.of(service);
        assertTrue(Files.isRegularFile(n.dir.resolve("graalvm.version")), "graalvm.version missing in " + n.dir);
        String main = n.args.getLast();
        assertEquals(n.runnerJar.getFileName().toString(), main, "native-image.args must end with the runner jar");
        assertTrue(n.args.contains("--enable-native-access=ALL-UNNAMED"),
                "FFM calls and Netty's JNI loader need --enable-native-access=ALL-UNNAMED: " + n.args);
        assertTrue(n.args.contains("--no-fallback"), "a fallback image would silently need a JVM");
        assertTrue(n.libJars.stream().anyMatch(p -> NativeSources.artifactName(p).startsWith("dev.ambient.shared-proto-")),
                "shared-proto (and its META-INF/native-image) must be on the native classpath");
    }

    /**
     * Every downcall handle our code creates has its descriptor registered: without it the
     * native executable throws at the first call (setns, getsockopt, sendmsg...), which no JVM
     * test would ever show. The descriptors are read by running each class's initializer.
     */
    @ParameterizedTest
    @FieldSource("SERVICES")
    void everyFfmDowncallIsRegistered(String service) {
        NativeSources n = NativeSources.of(service);
        Map<String, String> registered = n.registeredDowncalls();
        List<String> problems = new ArrayList<>();
        for (ClassScan c : n.ourClasses.values()) {
            if (!c.createsDowncalls()) {
                continue;
            }
            Set<String> created = DowncallProbe.downcallsCreatedBy(c.name(), n.classpath());
            if (created.isEmpty()) {
                problems.add(c.name() + " calls Linker.downcallHandle (" + c.downcallSites() + ") but its static "
                        + "initializer creates no handle: create handles in the static initializer, so this check "
                        + "(and native-image) can see them");
            }
            for (String d : created) {
                if (!registered.containsKey(d)) {
                    problems.add(c.name() + " creates a downcall \"" + d + "\" that no reachability-metadata.json "
                            + "registers: add it under \"foreign\": {\"downcalls\": [...]} in the module's "
                            + "src/main/resources/META-INF/native-image/dev.ambient/<module>/reachability-metadata.json");
                }
            }
            if (!c.upcallSites().isEmpty()) {
                problems.add(c.name() + " creates FFM upcalls " + c.upcallSites()
                        + ": register them (\"directUpcalls\") and extend this check");
            }
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    /**
     * Quarkus initializes classes at build time unless told otherwise; a downcall handle made at
     * build time would carry the build machine's addresses into the image.
     */
    @ParameterizedTest
    @FieldSource("SERVICES")
    void ffmClassesAreInitializedAtRunTime(String service) {
        NativeSources n = NativeSources.of(service);
        Set<String> runtime = n.runtimeInitialized();
        List<String> missing = n.ourClasses.values().stream().filter(ClassScan::createsDowncalls)
                .map(ClassScan::name).filter(c -> !NativeSources.coveredBy(c, runtime)).toList();
        assertTrue(missing.isEmpty(), "create downcall handles in their static initializer but are not "
                + "--initialize-at-run-time (add them to the module's META-INF/native-image/.../native-image.properties): "
                + missing);
    }

    /**
     * A class whose static initializer makes a SecureRandom, Random, thread, timer, executor or event loop group must be
     * initialized at run time: Quarkus initializes everything else at build time, and native-image
     * refuses such objects in the image heap (a random seed frozen into every copy of the binary).
     */
    @ParameterizedTest
    @FieldSource("SERVICES")
    void classesWithRandomOrThreadsInStaticInitializersAreInitializedAtRunTime(String service) {
        NativeSources n = NativeSources.of(service);
        Set<String> runtime = n.runtimeInitialized();
        Map<String, List<String>> missing = new TreeMap<>();
        for (String c : n.reachableOurClasses()) {
            ClassScan scan = n.ourClasses.get(c);
            if (!scan.staticInitHazards().isEmpty() && !NativeSources.coveredBy(c, runtime)) {
                missing.put(c, scan.staticInitHazards());
            }
        }
        assertTrue(missing.isEmpty(), "static initializers that native-image cannot run at build time; add the "
                + "classes to --initialize-at-run-time in the module's META-INF/native-image/dev.ambient/<module>/"
                + "native-image.properties: " + missing);
    }

    /** A service that can reach an FFM class asks for FFM support explicitly (GraalVM 25 defaults it on). */
    @ParameterizedTest
    @FieldSource("SERVICES")
    void ffmSupportIsOnWhereFfmIsReached(String service) {
        NativeSources n = NativeSources.of(service);
        List<String> ffmClasses = n.ourClasses.values().stream().filter(ClassScan::createsDowncalls)
                .map(ClassScan::name).toList();
        Set<String> reachable = n.reachableOurClasses();
        boolean usesFfm = ffmClasses.stream().anyMatch(reachable::contains);
        assertFalse(n.args.contains("-H:-ForeignAPISupport"), "FFM support switched off: " + n.args);
        if (usesFfm) {
            assertTrue(n.args.contains("-H:+ForeignAPISupport"), service + " reaches "
                    + ffmClasses.stream().filter(reachable::contains).toList()
                    + ": add quarkus.native.additional-build-args=-H:+UnlockExperimentalVMOptions,"
                    + "-H:+ForeignAPISupport,-H:-UnlockExperimentalVMOptions to its application.properties");
        }
    }

    /**
     * Our data planes need Netty's native epoll transport (SO_ORIGINAL_DST and SO_MARK work on
     * its file descriptors; NIO has none). Netty ships the JNI, reflection, resource and
     * run-time-initialization configuration itself; check that it is on the classpath, that
     * Quarkus does not exclude it, and that its resource pattern matches the packaged library.
     */
    @ParameterizedTest
    @FieldSource("SERVICES")
    void epollNativeTransportIsPackagedWithItsConfiguration(String service) {
        NativeSources n = NativeSources.of(service);
        assumeTrue(n.reaches("io/netty/channel/epoll/"), service + " never touches epoll: nothing to package");
        List<Path> nativeJars = n.jars(f -> f.startsWith("io.netty.netty-transport-native-epoll-")
                && f.endsWith("-linux-x86_64.jar"));
        assertEquals(1, nativeJars.size(), service + " reaches epoll but lib/ has no netty-transport-native-epoll "
                + "linux-x86_64 jar: add the dependency with <classifier>linux-x86_64</classifier>");
        String so = "META-INF/native/libnetty_transport_native_epoll_x86_64.so";
        assertTrue(n.entriesOf(nativeJars.getFirst()).containsKey(so), so + " missing from " + nativeJars.getFirst());

        Map<String, byte[]> jni = n.nativeImageConfig("jni-config.json");
        assertTrue(jni.keySet().stream().anyMatch(k -> k.contains("netty-transport-classes-epoll")),
                "Netty's epoll JNI configuration is excluded or missing: " + jni.keySet());
        List<Pattern> resources = n.resourceIncludes();
        assertTrue(resources.stream().anyMatch(p -> p.matcher(so).matches()),
                "no resource pattern includes " + so + ": the native library would be missing at run time");
        assertTrue(NativeSources.coveredBy("io.netty.channel.epoll.Native", n.runtimeInitialized()),
                "io.netty.channel.epoll must be initialized at run time (it loads a native library)");
    }

    /**
     * Quarkus's Netty extension substitutes io.netty.handler.ssl.OpenSsl in native images
     * (isAvailable() is false), so HboneTls uses the JDK engine there: tcnative's BoringSSL
     * library must then not be shipped as a dead 3 MB resource. If Quarkus ever drops the
     * substitution this fails, and BoringSSL needs registering (JNI + the .so resource).
     */
    @ParameterizedTest
    @FieldSource("SERVICES")
    void boringSslIsAccountedFor(String service) {
        NativeSources n = NativeSources.of(service);
        assumeTrue(n.reaches("io/netty/handler/ssl/OpenSsl"), service + " never asks for OpenSSL");
        Map<String, byte[]> substitution = n.find(e -> e.equals("io/quarkus/netty/runtime/graal/Target_io_netty_handler_ssl_OpenSsl.class"));
        assertEquals(1, substitution.size(), "Quarkus no longer substitutes OpenSsl: BoringSSL is now reachable in "
                + "the native image; register netty-tcnative's JNI configuration and its .so as a resource");
        String tcnative = "META-INF/native/libnetty_tcnative_linux_x86_64.so";
        assertFalse(n.resourceIncludes().stream().anyMatch(p -> p.matcher(tcnative).matches()),
                tcnative + " is included as a resource although BoringSSL cannot load in a Quarkus native image");
    }

    /** Every classpath resource our code reads by a constant name is included in the image. */
    @ParameterizedTest
    @FieldSource("SERVICES")
    void classpathResourcesOurCodeReadsAreIncluded(String service) {
        NativeSources n = NativeSources.of(service);
        List<Pattern> includes = n.resourceIncludes();
        Map<String, String> missing = new TreeMap<>();
        for (String c : n.reachableOurClasses()) {
            ClassScan scan = n.ourClasses.get(c);
            for (String r : scan.resourceLookups()) {
                if (includes.stream().noneMatch(p -> p.matcher(r).matches())) {
                    missing.put(r, c);
                }
            }
        }
        assertTrue(missing.isEmpty(), "resources read by our code but not in the image (add them to "
                + "quarkus.native.resources.includes): " + missing);
    }

    /** Our registrations travel in shared-proto's jar, so every service gets them. */
    @ParameterizedTest
    @FieldSource("SERVICES")
    void sharedProtoRegistrationsAreOnTheClasspath(String service) {
        NativeSources n = NativeSources.of(service);
        Set<String> ours = n.find(e -> e.startsWith("META-INF/native-image/dev.ambient/shared-proto/")).keySet();
        assertTrue(ours.stream().anyMatch(k -> k.endsWith("/reachability-metadata.json")), "missing: " + ours);
        assertTrue(ours.stream().anyMatch(k -> k.endsWith("/native-image.properties")), "missing: " + ours);
        assertFalse(n.registeredDowncalls().isEmpty(), "no downcall registered at all");
    }
}
