package dev.ambient.xds.security;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** How svc-xds authenticates and authorizes its clients ({@code xds.auth.*}); README.md describes each key. */
@ConfigMapping(prefix = "xds.auth")
public interface AuthConfig {

    enum Mode {
        /** Tokens checked by TokenReview (audience-bound), pods looked up in the API. */
        KUBERNETES,
        /** Tokens from a file, as svc-ca's standalone mode: {@code token namespace serviceaccount [node]}. */
        FILE
    }

    @WithDefault("kubernetes")
    Mode mode();

    /** For mode=file: the token file; without it every client is refused. */
    Optional<Path> tokenFile();

    /** {@code namespace/name} of the ztunnels' service account(s): they may stream as the node their token names. */
    @WithDefault("istio-system/ztunnel")
    List<String> ztunnelServiceAccount();

    /** Audiences a client's token must be for. */
    @WithDefault("istio-ca")
    List<String> audiences();

    @WithDefault("30s")
    Duration cacheTtl();

    @WithDefault("10000")
    int cacheMaxEntries();

    @WithDefault("16")
    int maxConcurrent();

    @WithDefault("4")
    int maxConcurrentPerPeer();
}
