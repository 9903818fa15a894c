package dev.ambient.auth;

import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.List;
import java.util.Map;

/**
 * Checks a service-account token with a Kubernetes TokenReview, bound to our audiences: the
 * review names them, and the answer must confirm one ({@code status.audiences}), so a token minted
 * for another service (a database, a webhook) can never be replayed here. A bound token (projected
 * volume) also names the pod it was issued for and, on newer clusters, that pod's node, in the
 * user's {@code extra} fields.
 */
public final class TokenReviewAuthenticator implements TokenAuthenticator {

    static final String SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:";
    public static final String EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name";
    public static final String EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name";

    private final KubernetesClient client;
    private final List<String> audiences;

    public TokenReviewAuthenticator(KubernetesClient client, List<String> audiences) {
        if (audiences.isEmpty()) {
            throw new IllegalArgumentException("a TokenReview must name the audiences the token is for");
        }
        this.client = client;
        this.audiences = List.copyOf(audiences);
    }

    @Override
    public Caller authenticate(String token, String peer) {
        TokenReview request = new TokenReviewBuilder()
                .withNewSpec().withToken(token).withAudiences(audiences).endSpec()
                .build();
        TokenReview review;
        try {
            review = client.authentication().v1().tokenReviews().create(request);
        } catch (KubernetesClientException e) {
            throw AuthenticationFailure.unavailable("cannot check the caller's token: the Kubernetes API "
                    + "did not answer the TokenReview (" + (e.getCode() > 0 ? "HTTP " + e.getCode() + ": " : "")
                    + firstLine(e.getMessage()) + "); try again later");
        }
        TokenReviewStatus status = review == null ? null : review.getStatus();
        if (status == null || !Boolean.TRUE.equals(status.getAuthenticated())) {
            String error = status == null || status.getError() == null || status.getError().isBlank()
                    ? "" : ": " + status.getError();
            throw AuthenticationFailure.unauthenticated("the token was rejected by the Kubernetes API" + error);
        }
        List<String> confirmed = status.getAudiences() == null ? List.of() : status.getAudiences();
        if (confirmed.stream().noneMatch(audiences::contains)) {
            throw AuthenticationFailure.unauthenticated("the Kubernetes API did not confirm the token is for audience "
                    + String.join(" or ", audiences) + " (it confirmed " + (confirmed.isEmpty() ? "none" : confirmed) + ")");
        }
        String username = status.getUser() == null ? null : status.getUser().getUsername();
        if (username == null || !username.startsWith(SERVICE_ACCOUNT_PREFIX)) {
            throw AuthenticationFailure.unauthenticated("the token belongs to " + username
                    + ", not to a service account; use a service-account token");
        }
        String[] parts = username.substring(SERVICE_ACCOUNT_PREFIX.length()).split(":", -1);
        if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
            throw AuthenticationFailure.unauthenticated("the token's user \"" + username
                    + "\" is not of the form system:serviceaccount:<namespace>:<name>");
        }
        Map<String, List<String>> extra = status.getUser().getExtra();
        return new Caller(parts[0], parts[1], single(extra, EXTRA_POD_NAME), single(extra, EXTRA_NODE_NAME));
    }

    private static String single(Map<String, List<String>> extra, String key) {
        if (extra == null) {
            return null;
        }
        List<String> values = extra.get(key);
        return values == null || values.size() != 1 || values.getFirst().isBlank() ? null : values.getFirst();
    }

    private static String firstLine(String text) {
        if (text == null) {
            return "no detail";
        }
        int newline = text.indexOf('\n');
        return newline < 0 ? text : text.substring(0, newline);
    }
}
