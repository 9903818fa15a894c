package dev.ambient.xds.security;

import dev.ambient.auth.StaticTokenFile;
import dev.ambient.auth.TokenAuthenticator;
import dev.ambient.auth.TokenReviewSettings;
import io.fabric8.kubernetes.client.KubernetesClient;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Instance;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.util.LinkedHashSet;
import java.util.Set;

/** Who may stream and as what: the authenticator of the configured mode and the stream authorizer. */
@ApplicationScoped
public class AuthenticationBeans {

    @Produces
    @Singleton
    StreamAuthorizer streamAuthorizer(AuthConfig config) {
        Set<String> ztunnels = new LinkedHashSet<>();
        for (String ref : config.ztunnelServiceAccount()) {
            String account = ref.strip();
            int slash = account.indexOf('/');
            if (slash <= 0 || slash == account.length() - 1 || account.indexOf('/', slash + 1) >= 0) {
                throw new IllegalArgumentException("xds.auth.ztunnel-service-account must be namespace/name, not \""
                        + ref + "\"");
            }
            ztunnels.add(account);
        }
        return new StreamAuthorizer(ztunnels);
    }

    @Produces
    @Singleton
    TokenAuthenticator tokenAuthenticator(AuthConfig config, StreamAuthorizer authorizer,
            Instance<KubernetesClient> kubernetes) {
        return switch (config.mode()) {
            case KUBERNETES -> new PodNodeLookup(new TokenReviewSettings(config.audiences(), config.cacheTtl(),
                    config.cacheMaxEntries(), config.maxConcurrent(), config.maxConcurrentPerPeer())
                    .authenticator(kubernetes.get()), kubernetes.get(), authorizer::isZtunnel);
            case FILE -> new StaticTokenFile(config.tokenFile());
        };
    }
}
