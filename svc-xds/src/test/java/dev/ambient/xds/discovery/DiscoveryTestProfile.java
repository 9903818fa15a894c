package dev.ambient.xds.discovery;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;
import java.util.Set;

/**
 * Serves a {@link MutableMeshModel} that the test controls instead of the real sources. The real
 * source still starts (its producer is eager), so it is pointed at an empty directory rather than
 * an API server that does not exist here, and the waypoint controller is off.
 */
public class DiscoveryTestProfile implements QuarkusTestProfile {

    @Override
    public Set<Class<?>> getEnabledAlternatives() {
        return Set.of(MutableMeshModel.class);
    }

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("xds.source", "directory", "xds.directory", "target/discovery-test-empty-mesh",
                "xds.waypoint.enabled", "false",
                // Small enough for a test to see a response cut.
                "xds.discovery.max-response-bytes", "100000");
    }
}
