package dev.ambient.nativeimage;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * One service's {@code target/native-check/native-sources/}: what Quarkus hands to
 * {@code native-image} (the arguments, the runner jar, lib/), read as native-image would read it.
 */
final class NativeSources {

    static final List<String> SERVICES = List.of("svc-ztunnel", "svc-waypoint", "svc-ca", "svc-xds", "svc-cni-agent");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, NativeSources> CACHE = new ConcurrentHashMap<>();

    final String service;
    final Path dir;
    final List<String> args;
    final Path runnerJar;
    final List<Path> libJars;
    /** jar -> entry name -> bytes, for every jar native-image sees. */
    private final Map<Path, Map<String, byte[]>> entries = new LinkedHashMap<>();
    /** Our classes (dev.ambient.*), from the runner jar and our own jars in lib/. */
    final Map<String, ClassScan> ourClasses = new LinkedHashMap<>();
    /** The service's own classes: the roots of what the image can reach. */
    final Set<String> appClasses = new TreeSet<>();

    private NativeSources(String service, Path dir) throws IOException {
        this.service = service;
        this.dir = dir;
        this.args = List.of(Files.readString(dir.resolve("native-image.args")).trim().split("\\s+"));
        try (Stream<Path> s = Files.list(dir)) {
            this.runnerJar = s.filter(p -> p.getFileName().toString().endsWith("-runner.jar")).findFirst()
                    .orElseThrow(() -> new IOException("no *-runner.jar in " + dir));
        }
        try (Stream<Path> s = Files.list(dir.resolve("lib"))) {
            this.libJars = s.filter(p -> p.toString().endsWith(".jar")).sorted().toList();
        }
        read(runnerJar, true);
        for (Path lib : libJars) {
            read(lib, artifactName(lib).startsWith("dev.ambient."));
        }
    }

    /**
     * A lib/ jar's name without the "modified-" Quarkus puts before a jar it transformed (which
     * depends on where the jar came from: a reactor build without a prior install transforms
     * shared-proto, an installed shared-proto is copied as is).
     */
    static String artifactName(Path jar) {
        String name = jar.getFileName().toString();
        return name.startsWith("modified-") ? name.substring("modified-".length()) : name;
    }

    /** Fails with what to run when the service's verify did not produce the native sources. */
    static NativeSources of(String service) {
        return CACHE.computeIfAbsent(service, s -> {
            Path dir = repo().resolve(s).resolve("target/native-check/native-sources");
            if (!Files.isRegularFile(dir.resolve("native-image.args"))) {
                throw new IllegalStateException(dir + "/native-image.args is missing: run `./mvnw -B verify` (the "
                        + "profile native-sources-check builds it in each service's verify), or "
                        + "`./mvnw -B -pl " + s + " verify -DskipTests` for this one");
            }
            try {
                return new NativeSources(s, dir);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    static Path repo() {
        return Path.of(System.getProperty("native.repo", "..")).toAbsolutePath().normalize();
    }

    private void read(Path jar, boolean ours) throws IOException {
        Map<String, byte[]> content = new LinkedHashMap<>();
        try (JarFile jf = new JarFile(jar.toFile())) {
            for (JarEntry e : (Iterable<JarEntry>) jf.stream()::iterator) {
                String n = e.getName();
                boolean interesting = n.startsWith("META-INF/native-image/") || n.startsWith("META-INF/native/")
                        || (n.startsWith("dev/ambient/") && n.endsWith(".class"))
                        || n.startsWith("io/quarkus/netty/runtime/graal/");
                if (interesting && !e.isDirectory()) {
                    content.put(n, jf.getInputStream(e).readAllBytes());
                }
                if (!e.isDirectory() && !interesting) {
                    content.put(n, null);   // name only: for resource checks
                }
            }
        }
        entries.put(jar, content);
        if (ours || jar.equals(runnerJar)) {
            for (var e : content.entrySet()) {
                if (e.getKey().startsWith("dev/ambient/") && e.getKey().endsWith(".class")) {
                    ClassScan scan = ClassScan.of(e.getValue());
                    ourClasses.put(scan.name(), scan);
                    if (jar.equals(runnerJar)) {
                        appClasses.add(scan.name());
                    }
                }
            }
        }
    }

    List<URL> classpath() {
        List<URL> urls = new ArrayList<>();
        try {
            urls.add(runnerJar.toUri().toURL());
            for (Path p : libJars) {
                urls.add(p.toUri().toURL());
            }
        } catch (MalformedURLException e) {
            throw new IllegalStateException(e);
        }
        return urls;
    }

    /** Entries (with content for META-INF/native-image/**) matching {@code name}, keyed "jar!/entry". */
    Map<String, byte[]> find(Predicate<String> name) {
        Map<String, byte[]> out = new LinkedHashMap<>();
        entries.forEach((jar, content) -> content.forEach((n, bytes) -> {
            if (name.test(n)) {
                out.put(jar.getFileName() + "!/" + n, bytes);
            }
        }));
        return out;
    }

    /** Jars whose file name matches, e.g. the epoll native jar. */
    List<Path> jars(Predicate<String> fileName) {
        return entries.keySet().stream().filter(p -> fileName.test(artifactName(p))).toList();
    }

    Map<String, byte[]> entriesOf(Path jar) {
        return entries.get(jar);
    }

    /** The metadata files native-image would read, minus those the arguments exclude (--exclude-config). */
    Map<String, byte[]> nativeImageConfig(String fileName) {
        List<Pattern[]> excluded = new ArrayList<>();
        for (int i = 0; i + 2 < args.size(); i++) {
            if (args.get(i).equals("--exclude-config")) {
                excluded.add(new Pattern[] {Pattern.compile(args.get(i + 1)), Pattern.compile(args.get(i + 2))});
            }
        }
        Map<String, byte[]> out = new LinkedHashMap<>();
        entries.forEach((jar, content) -> content.forEach((n, bytes) -> {
            if (n.startsWith("META-INF/native-image/") && n.endsWith("/" + fileName) || n.equals("META-INF/native-image/" + fileName)) {
                boolean skip = excluded.stream().anyMatch(x -> x[0].matcher(jar.getFileName().toString()).find()
                        && x[1].matcher("/" + n).matches());
                if (!skip) {
                    out.put(jar.getFileName() + "!/" + n, bytes);
                }
            }
        }));
        return out;
    }

    /** Every class or package given to --initialize-at-run-time, in the arguments or a native-image.properties. */
    Set<String> runtimeInitialized() {
        Set<String> out = new TreeSet<>();
        List<String> all = new ArrayList<>(args);
        for (byte[] props : nativeImageConfig("native-image.properties").values()) {
            Properties p = new Properties();
            try {
                p.load(new StringReader(new String(props, StandardCharsets.UTF_8)));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            all.addAll(Arrays.asList(p.getProperty("Args", "").trim().split("\\s+")));
        }
        for (String a : all) {
            if (a.startsWith("--initialize-at-run-time=")) {
                out.addAll(Arrays.asList(a.substring("--initialize-at-run-time=".length()).split(",")));
            }
        }
        out.remove("");
        return out;
    }

    static boolean coveredBy(String className, Set<String> classesOrPackages) {
        for (String prefix : classesOrPackages) {
            if (className.equals(prefix) || className.startsWith(prefix + ".")) {
                return true;
            }
        }
        return false;
    }

    /** Downcalls registered in every reachability-metadata.json native-image would read. */
    Map<String, String> registeredDowncalls() {
        Map<String, String> out = new LinkedHashMap<>();
        nativeImageConfig("reachability-metadata.json").forEach((where, bytes) -> {
            for (JsonNode d : json(bytes, where).path("foreign").path("downcalls")) {
                out.putIfAbsent(ForeignDescriptors.describe(d), where);
            }
        });
        return out;
    }

    /** Resource include patterns as regular expressions, from resource-config.json and reachability-metadata.json. */
    List<Pattern> resourceIncludes() {
        List<Pattern> out = new ArrayList<>();
        nativeImageConfig("resource-config.json").forEach((where, bytes) -> {
            JsonNode root = json(bytes, where);
            JsonNode includes = root.path("resources").isArray() ? root.path("resources")
                    : root.path("resources").path("includes");
            for (JsonNode inc : includes) {
                if (inc.has("pattern")) {
                    out.add(Pattern.compile(inc.get("pattern").asText()));
                } else if (inc.has("glob")) {
                    out.add(glob(inc.get("glob").asText()));
                }
            }
        });
        nativeImageConfig("reachability-metadata.json").forEach((where, bytes) -> {
            for (JsonNode inc : json(bytes, where).path("resources")) {
                if (inc.has("glob")) {
                    out.add(glob(inc.get("glob").asText()));
                }
            }
        });
        return out;
    }

    private static Pattern glob(String glob) {
        StringBuilder re = new StringBuilder();
        for (int i = 0; i < glob.length(); i++) {
            char c = glob.charAt(i);
            if (c == '*' && i + 1 < glob.length() && glob.charAt(i + 1) == '*') {
                re.append(".*");
                i++;
            } else if (c == '*') {
                re.append("[^/]*");
            } else {
                re.append(Pattern.quote(String.valueOf(c)));
            }
        }
        return Pattern.compile(re.toString());
    }

    private static JsonNode json(byte[] bytes, String where) {
        try {
            return JSON.readTree(bytes);
        } catch (IOException e) {
            throw new IllegalStateException(where + " is not valid JSON: " + e.getMessage(), e);
        }
    }

    /** Our classes the service's own classes can reach through class references (a superset of what runs). */
    Set<String> reachableOurClasses() {
        Set<String> seen = new TreeSet<>(appClasses);
        Deque<String> todo = new ArrayDeque<>(appClasses);
        while (!todo.isEmpty()) {
            ClassScan c = ourClasses.get(todo.pop());
            if (c == null) {
                continue;
            }
            for (String ref : c.references()) {
                String n = ref.replace('/', '.');
                if (ourClasses.containsKey(n) && seen.add(n)) {
                    todo.push(n);
                }
            }
        }
        return seen;
    }

    boolean reaches(String internalPackagePrefix) {
        return reachableOurClasses().stream().map(ourClasses::get)
                .anyMatch(c -> c != null && c.referencesPackage(internalPackagePrefix));
    }

    @Override
    public String toString() {
        return service;
    }
}
