package dev.ambient.auth;

import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Duration;
import java.util.List;

/**
 * How svc-ca and svc-xds check tokens against the API server, and what that may cost.
 *
 * @param audiences the token must be for one of these (the first is what proxies are told to mount)
 * @param cacheTtl how long an answer (valid or rejected) is reused; 0 = no cache
 * @param cacheMaxEntries bound of each of the two caches (valid, rejected)
 * @param maxConcurrent TokenReviews in flight at most
 * @param maxConcurrentPerPeer TokenReviews in flight at most for one caller address
 */
public record TokenReviewSettings(List<String> audiences, Duration cacheTtl, int cacheMaxEntries, int maxConcurrent,
        int maxConcurrentPerPeer) {

    public TokenReviewSettings {
        audiences = List.copyOf(audiences);
        if (audiences.isEmpty()) {
            throw new IllegalArgumentException("at least one token audience is required");
        }
    }

    /** Cheap shape and audience check, then the cache, then the bound, then the TokenReview. */
    public TokenAuthenticator authenticator(KubernetesClient client) {
        return new AudiencePrecheck(audiences, new CachingAuthenticator(
                new ConcurrencyLimit(new TokenReviewAuthenticator(client, audiences), maxConcurrent, maxConcurrentPerPeer),
                cacheTtl, cacheMaxEntries));
    }
}
