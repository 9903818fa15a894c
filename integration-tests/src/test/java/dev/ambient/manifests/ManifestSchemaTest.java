package dev.ambient.manifests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What a user applying our YAML to a real cluster relies on, checked offline against the published
 * schemas (Kubernetes, Gateway API, Istio, Prometheus operator; see k8s-schema/package.json): the
 * whole mesh as {@code kubectl kustomize k8s/} renders it, the CRDs, and the Istio-format samples
 * of the mesh in a box. A field of the wrong type or an unknown enum value fails here, not on apply.
 */
class ManifestSchemaTest {

    static final Path REPO = Path.of("..").toAbsolutePath().normalize();
    static final Path VALIDATOR = Path.of("target", "k8s-schema").toAbsolutePath();

    record Result(int exit, String output) {
    }

    @BeforeAll
    static void installValidator() throws Exception {
        Assumptions.assumeTrue(onPath("kubectl"), "kubectl is not installed: k8s/ cannot be rendered");
        Files.createDirectories(VALIDATOR);
        for (String f : List.of("package.json", "package-lock.json", "validate.mjs")) {
            Files.copy(REPO.resolve("integration-tests/k8s-schema").resolve(f), VALIDATOR.resolve(f),
                    StandardCopyOption.REPLACE_EXISTING);
        }
        if (!Files.isDirectory(VALIDATOR.resolve("node_modules/kubernetes-models"))) {
            Result npm = run(null, VALIDATOR, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error");
            assertEquals(0, npm.exit(), "npm ci of the schema validator failed:\n" + npm.output());
        }
    }

    static boolean onPath(String command) {
        return java.util.Arrays.stream(System.getenv().getOrDefault("PATH", "").split(":"))
                .anyMatch(d -> Files.isExecutable(Path.of(d, command)));
    }

    static Result run(String stdin, Path dir, String... command) throws Exception {
        Path out = Files.createTempFile("manifest-schema", ".out");
        try {
            ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(out.toFile());
            Process p = pb.start();
            try (var in = p.getOutputStream()) {
                if (stdin != null) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            }
            if (!p.waitFor(5, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                fail(String.join(" ", command) + " did not finish in 5 minutes");
            }
            return new Result(p.exitValue(), Files.readString(out));
        } finally {
            Files.deleteIfExists(out);
        }
    }

    static String kustomize(String dir) throws Exception {
        Path rendered = Files.createTempFile("kustomize", ".yaml");
        try {
            Process p = new ProcessBuilder("kubectl", "kustomize", REPO.resolve(dir).toString())
                    .redirectOutput(rendered.toFile()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            assertTrue(p.waitFor(2, TimeUnit.MINUTES), "kubectl kustomize " + dir + " hung");
            assertEquals(0, p.exitValue(), "kubectl kustomize " + dir + " failed");
            return Files.readString(rendered);
        } finally {
            Files.deleteIfExists(rendered);
        }
    }

    static String validate(String yaml) throws Exception {
        Result r = run(yaml, VALIDATOR, "node", "validate.mjs");
        assertEquals(0, r.exit(), "schema validation failed:\n" + r.output());
        return r.output();
    }

    static String concat(Path dir) {
        try (var files = Files.list(dir)) {
            StringBuilder all = new StringBuilder();
            for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
                all.append("---\n").append(Files.readString(f)).append('\n');
            }
            return all.toString();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void theWholeMeshRendersAndEveryObjectMatchesItsSchema() throws Exception {
        String yaml = kustomize("k8s");
        String report = validate(yaml);
        for (String expected : List.of("kind: DaemonSet", "kind: Deployment", "kind: PodMonitor", "kind: ServiceMonitor",
                "name: dashboard-ambient-ztunnel", "name: dashboard-ambient-waypoint",
                "name: dashboard-ambient-control-plane", "prometheus.io/scrape")) {
            assertTrue(yaml.contains(expected), "the rendered mesh lacks " + expected);
        }
        assertTrue(report.contains(" 0 invalid"), report);
    }

    @Test
    void theCrdsMatchTheirSchema() throws Exception {
        validate(kustomize("k8s/crds"));
    }

    @Test
    void theMeshInABoxSamplesAreValidIstioAndGatewayApiYaml() throws Exception {
        validate(concat(REPO.resolve("integration-tests/meshbox/samples")));
    }

    @Test
    void theValidatorRejectsWhatAnApiServerWouldReject() throws Exception {
        String broken = """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: typo, namespace: default}
                spec: {action: DENNY}
                ---
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: bad}
                spec: {replicas: two, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}}
                """;
        Result r = run(broken, VALIDATOR, "node", "validate.mjs");
        assertEquals(1, r.exit(), r.output());
        assertTrue(r.output().contains("AuthorizationPolicy/typo") && r.output().contains("Deployment/bad"), r.output());
    }
}
