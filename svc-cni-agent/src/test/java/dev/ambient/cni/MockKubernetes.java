package dev.ambient.cni;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Queue;

/**
 * The fabric8 mock API server in CRUD mode (the one {@code @WithKubernetesTestServer(crud = true)}
 * starts; started directly because a {@code @QuarkusTest} loads the protobuf classes in its own
 * class loader), where {@link KubernetesMockServer#expect()} answers take precedence (a slow
 * answer, say) and everything else is CRUD. Plus a temporary directory for the agent's sockets.
 */
public final class MockKubernetes implements AutoCloseable {

    public final KubernetesMockServer server;
    public final KubernetesClient client;
    public final Path dir;

    public MockKubernetes(String dirPrefix) throws IOException {
        Map<ServerRequest, Queue<ServerResponse>> expectations = new HashMap<>();
        server = new KubernetesMockServer(new Context(), new MockWebServer(), expectations,
                new KubernetesMixedDispatcher(expectations), false);
        server.init();
        client = server.createClient();
        dir = Files.createTempDirectory(dirPrefix);
    }

    @Override
    public void close() {
        client.close();
        server.destroy();
        try (var files = Files.list(dir)) {
            files.forEach(f -> f.toFile().delete());
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            // a temporary directory; best effort
        }
    }
}
