package dev.ambient.ca;

import io.quarkus.test.junit.QuarkusTestProfile;
import java.util.Map;

/** The CA as deployed: root in a Secret, tokens by TokenReview; the API is the in-process mock. */
public class KubernetesModeProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of(
                "ca.mode", "kubernetes",
                "ca.root-retry-interval", "500ms",
                // keep the running CA off the Secrets the root tests create next to it
                "ca.root-reload-interval", "1h");
    }
}
