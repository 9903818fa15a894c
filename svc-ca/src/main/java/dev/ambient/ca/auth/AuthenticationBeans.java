package dev.ambient.ca.auth;

import dev.ambient.ca.config.CaConfig;
import io.fabric8.kubernetes.client.KubernetesClient;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Instance;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** The authenticator and authorizer for the configured mode; standalone mode never touches a Kubernetes client. */
@ApplicationScoped
public class AuthenticationBeans {

    @Produces
    @Singleton
    TokenAuthenticator tokenAuthenticator(CaConfig config, Instance<KubernetesClient> kubernetes) {
        return switch (config.mode()) {
            case KUBERNETES -> new CachingAuthenticator(
                    new TokenReviewAuthenticator(kubernetes.get(), config.tokenReview().audiences().orElse(List.of())),
                    config.tokenReview().cacheTtl(), config.tokenReview().cacheMaxEntries());
            case STANDALONE -> new StaticTokenFile(config.standalone().tokenFile());
        };
    }

    @Produces
    @Singleton
    IdentityAuthorizer identityAuthorizer(CaConfig config, Instance<KubernetesClient> kubernetes) {
        PodDirectory pods = switch (config.mode()) {
            case KUBERNETES -> new KubernetesPodDirectory(kubernetes.get());
            case STANDALONE -> new FilePodDirectory(config.standalone().podsDir());
        };
        Set<String> ztunnels = new LinkedHashSet<>();
        for (String ref : config.ztunnelServiceAccount()) {
            dev.ambient.ca.config.NamespacedName.parse("ca.ztunnel-service-account", ref.strip());
            ztunnels.add(ref.strip());
        }
        return new IdentityAuthorizer(config.trustDomain(), ztunnels, pods);
    }
}
