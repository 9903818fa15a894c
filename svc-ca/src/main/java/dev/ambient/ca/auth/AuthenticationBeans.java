package dev.ambient.ca.auth;

import dev.ambient.auth.StaticTokenFile;
import dev.ambient.auth.TokenAuthenticator;
import dev.ambient.auth.TokenReviewSettings;
import dev.ambient.ca.config.CaConfig;
import dev.ambient.ca.config.NamespacedName;
import io.fabric8.kubernetes.client.KubernetesClient;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Instance;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** The authenticator and authorizers for the configured mode; standalone mode never touches a Kubernetes client. */
@ApplicationScoped
public class AuthenticationBeans {

    @Produces
    @Singleton
    TokenAuthenticator tokenAuthenticator(CaConfig config, Instance<KubernetesClient> kubernetes) {
        var review = config.tokenReview();
        return switch (config.mode()) {
            case KUBERNETES -> new TokenReviewSettings(review.audiences(), review.cacheTtl(), review.cacheMaxEntries(),
                    review.maxConcurrent(), review.maxConcurrentPerPeer()).authenticator(kubernetes.get());
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
        return new IdentityAuthorizer(config.trustDomain(), accounts("ca.ztunnel-service-account",
                config.ztunnelServiceAccount()), pods);
    }

    @Produces
    @Singleton
    ServerNameAuthorizer serverNameAuthorizer(CaConfig config) {
        return new ServerNameAuthorizer(accounts("ca.control-plane-service-accounts", config.controlPlaneServiceAccounts()),
                config.clusterDomain());
    }

    private static Set<String> accounts(String key, List<String> refs) {
        Set<String> accounts = new LinkedHashSet<>();
        for (String ref : refs) {
            NamespacedName.parse(key, ref.strip());
            accounts.add(ref.strip());
        }
        return accounts;
    }
}
