package dev.ambient.auth;

import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.Headers;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.fabric8.mockwebserver.utils.ResponseProvider;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * The TokenReview endpoint the CRUD mock cannot compute: answers from a table of tokens that
 * tests fill in, the way the API server would (user, bound pod and node in {@code extra}, the
 * audiences the token is valid for among those the review names). Tokens are JWT-shaped, as
 * projected tokens are; {@link #jwt} makes one. A token registered as {@link #OUTAGE} gets HTTP
 * 503; an unknown one is rejected after {@link #unknownTokenDelayMillis} (a slow API server).
 * Shared by the tests of svc-ca and svc-xds (this module's test jar): register it with
 * {@code @WithKubernetesTestServer(setup = FakeTokenReviews.class)}.
 */
public final class FakeTokenReviews implements Consumer<KubernetesServer> {

    public record Holder(String namespace, String serviceAccount, String podName, String nodeName, List<String> audiences) {
        public Holder(String namespace, String serviceAccount, String podName, String nodeName) {
            this(namespace, serviceAccount, podName, nodeName, List.of("istio-ca"));
        }
    }

    public static final Holder OUTAGE = new Holder("-", "-", null, null);
    public static final Map<String, Holder> TOKENS = new ConcurrentHashMap<>();
    static final Map<String, AtomicInteger> REVIEWS = new ConcurrentHashMap<>();
    static final AtomicInteger ALL_REVIEWS = new AtomicInteger();
    public static volatile long unknownTokenDelayMillis;

    /** A JWT-shaped token named {@code name} for {@code audiences} (its signature is nobody's business but the fake's). */
    public static String jwt(String name, List<String> audiences) {
        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        String claims = "{\"aud\":[" + String.join(",", audiences.stream().map(a -> "\"" + a + "\"").toList())
                + "],\"sub\":\"" + name + "\"}";
        return b64.encodeToString("{\"alg\":\"RS256\"}".getBytes(StandardCharsets.UTF_8)) + "."
                + b64.encodeToString(claims.getBytes(StandardCharsets.UTF_8)) + ".c2lnbmVkLWJ5LXRoZS1mYWtl";
    }

    /** The token of {@code name}, for the CA's audience. */
    public static String jwt(String name) {
        return jwt(name, List.of("istio-ca"));
    }

    /** Registers the token named {@code name}, minted for the holder's audiences; returns it. */
    public static String register(String name, Holder holder) {
        String token = jwt(name, holder.audiences());
        TOKENS.put(token, holder);
        return token;
    }

    public static int reviewsOf(String name) {
        return REVIEWS.computeIfAbsent(jwt(name), t -> new AtomicInteger()).get();
    }

    public static int allReviews() {
        return ALL_REVIEWS.get();
    }

    @Override
    public void accept(KubernetesServer server) {
        server.expect().post().withPath("/apis/authentication.k8s.io/v1/tokenreviews").andReply(new ResponseProvider<>() {
            private Headers headers = Headers.builder().build();

            @Override
            public int getStatusCode(RecordedRequest request) {
                return TOKENS.get(review(request).getSpec().getToken()) == OUTAGE ? 503 : 201;
            }

            @Override
            public Object getBody(RecordedRequest request) {
                TokenReview asked = review(request);
                String token = asked.getSpec().getToken();
                ALL_REVIEWS.incrementAndGet();
                REVIEWS.computeIfAbsent(token, t -> new AtomicInteger()).incrementAndGet();
                Holder holder = TOKENS.get(token);
                if (holder == OUTAGE) {
                    return "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"code\":503,"
                            + "\"message\":\"etcd is down\"}";
                }
                var review = new TokenReviewBuilder().withNewSpec().withToken(token).endSpec();
                if (holder == null) {
                    sleep(unknownTokenDelayMillis);
                    return review.withNewStatus().withAuthenticated(false).withError("invalid bearer token").endStatus().build();
                }
                List<String> wanted = asked.getSpec().getAudiences() == null ? List.of() : asked.getSpec().getAudiences();
                // as the API server: no audiences asked = its own; asked ones must meet the token's
                List<String> valid = wanted.isEmpty() ? List.of("https://kubernetes.default.svc")
                        : holder.audiences().stream().filter(wanted::contains).toList();
                if (valid.isEmpty()) {
                    return review.withNewStatus().withAuthenticated(false).withError("[invalid bearer token, token "
                            + "audiences " + holder.audiences() + " is invalid for the target audiences " + wanted + "]")
                            .endStatus().build();
                }
                Map<String, List<String>> extra = new HashMap<>();
                if (holder.podName() != null) {
                    extra.put("authentication.kubernetes.io/pod-name", List.of(holder.podName()));
                }
                if (holder.nodeName() != null) {
                    extra.put("authentication.kubernetes.io/node-name", List.of(holder.nodeName()));
                }
                return review.withNewStatus().withAuthenticated(true).withAudiences(valid).withNewUser()
                        .withUsername("system:serviceaccount:" + holder.namespace() + ":" + holder.serviceAccount())
                        .withExtra(extra).endUser().endStatus().build();
            }

            @Override
            public Headers getHeaders() {
                return headers;
            }

            @Override
            public void setHeaders(Headers headers) {
                this.headers = headers;
            }
        }).always();
    }

    private static TokenReview review(RecordedRequest request) {
        // getBytes() does not consume the body: the status and the body are both computed from it
        String body = new String(request.getBody().getBytes(), StandardCharsets.UTF_8);
        return Serialization.unmarshal(body, TokenReview.class);
    }

    private static void sleep(long millis) {
        if (millis > 0) {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
