package dev.ambient.ca;

import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.http.Headers;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.fabric8.mockwebserver.utils.ResponseProvider;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * The TokenReview endpoint the CRUD mock cannot compute: answers from a table of tokens that
 * tests fill in, the way the API server would (user, bound pod and node in {@code extra}).
 * A token registered as {@link #OUTAGE} gets HTTP 503.
 */
public final class FakeTokenReviews implements Consumer<KubernetesServer> {

    public record Holder(String namespace, String serviceAccount, String podName, String nodeName) {}

    public static final Holder OUTAGE = new Holder("-", "-", null, null);
    static final Map<String, Holder> TOKENS = new ConcurrentHashMap<>();
    static final Map<String, AtomicInteger> REVIEWS = new ConcurrentHashMap<>();

    public static void register(String token, Holder holder) {
        TOKENS.put(token, holder);
    }

    public static int reviewsOf(String token) {
        return REVIEWS.computeIfAbsent(token, t -> new AtomicInteger()).get();
    }

    @Override
    public void accept(KubernetesServer server) {
        server.expect().post().withPath("/apis/authentication.k8s.io/v1/tokenreviews").andReply(new ResponseProvider<>() {
            private Headers headers = Headers.builder().build();

            @Override
            public int getStatusCode(RecordedRequest request) {
                return TOKENS.get(token(request)) == OUTAGE ? 503 : 201;
            }

            @Override
            public Object getBody(RecordedRequest request) {
                String token = token(request);
                REVIEWS.computeIfAbsent(token, t -> new AtomicInteger()).incrementAndGet();
                Holder holder = TOKENS.get(token);
                if (holder == OUTAGE) {
                    return "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"code\":503,"
                            + "\"message\":\"etcd is down\"}";
                }
                var review = new TokenReviewBuilder().withNewSpec().withToken(token).endSpec();
                if (holder == null) {
                    return review.withNewStatus().withAuthenticated(false).withError("invalid bearer token").endStatus().build();
                }
                Map<String, List<String>> extra = new HashMap<>();
                if (holder.podName() != null) {
                    extra.put("authentication.kubernetes.io/pod-name", List.of(holder.podName()));
                }
                if (holder.nodeName() != null) {
                    extra.put("authentication.kubernetes.io/node-name", List.of(holder.nodeName()));
                }
                return review.withNewStatus().withAuthenticated(true).withNewUser()
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

    private static String token(RecordedRequest request) {
        // getBytes() does not consume the body: the status and the body are both computed from it
        String body = new String(request.getBody().getBytes(), java.nio.charset.StandardCharsets.UTF_8);
        return Serialization.unmarshal(body, TokenReview.class).getSpec().getToken();
    }
}
