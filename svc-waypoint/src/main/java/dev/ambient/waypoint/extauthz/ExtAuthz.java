package dev.ambient.waypoint.extauthz;

import dev.ambient.proto.l7.ExtAuthzProvider;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * AuthorizationPolicy action CUSTOM's calls to external authorizers (Envoy's ext_authz), for one
 * waypoint. Bounded: each check ends by its provider's timeout, at most {@code maxInFlight}
 * checks per provider run at once (beyond, the check fails at once as overloaded), and nothing
 * here blocks the caller: the result completes on a Vert.x or gRPC thread and the caller hops
 * back to its own event loop. A failed check (unreachable, timeout, 5xx, overloaded) allows when
 * the provider is failOpen, else denies with its statusOnError (403 by default), as Envoy.
 * Counts outcomes per provider: {@code waypoint_ext_authz_checks_total{provider, outcome}} with
 * outcome allow, deny, error, timeout or overloaded. With includeRequestBodyInCheck the caller
 * holds the body first and passes it in the {@link CheckInput} ({@link BodySettings}).
 *
 * <p>Where the authorizer is: svc-xds resolves a provider's mesh service to its endpoints, and
 * the waypoint picks one (round robin). An endpoint whose workload is in the mesh (svc-xds gives
 * its SPIFFE id) is reached only through HBONE, via {@link MeshAuthorizerBridge}: mTLS with the
 * waypoint's identity, the authorizer's verified, as Istio's waypoint reaches a mesh authorizer.
 * An endpoint outside the mesh, or a provider naming something outside the mesh (dialled by
 * name), is dialled directly in plaintext, as before.
 */
public final class ExtAuthz implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ExtAuthz.class);

    /** Bounds: checks in flight per provider, bytes of an authorizer's answer. */
    public record Limits(int maxInFlight, int maxResponseBytes) {
    }

    private final Limits limits;
    private final MeterRegistry registry;
    private final Vertx vertx;
    private final HttpAuthorizer http;
    private final GrpcAuthorizer grpc;
    private final Map<String, AtomicInteger> inFlight = new ConcurrentHashMap<>();
    private final AtomicLong roundRobin = new AtomicLong();
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();

    /**
     * {@code control}: a small Vert.x of the waypoint's own, never the data plane's event loops; its
     * owner closes it. {@code bridge}: where checks to mesh authorizers are tunnelled.
     */
    public ExtAuthz(Limits limits, Vertx control, MeterRegistry registry, InetSocketAddress bridge) {
        this.limits = limits;
        this.registry = registry;
        this.vertx = control;
        this.http = new HttpAuthorizer(WebClient.create(vertx, new WebClientOptions().setKeepAlive(true)
                .setMaxPoolSize(64).setFollowRedirects(false).setTryUseCompression(false)
                .setUserAgentEnabled(false).setMaxHeaderSize(16 * 1024)), limits.maxResponseBytes(), bridge);
        this.grpc = new GrpcAuthorizer(limits.maxResponseBytes(), bridge);
    }

    /**
     * Asks the provider about a request. Completes with Allow or Deny (a failure already turned
     * into one of them by failOpen / statusOnError), on some other thread; never exceptionally.
     * The input's headers are read before this returns.
     */
    public CompletionStage<Outcome> check(ExtAuthzProvider p, CheckInput in) {
        AtomicInteger slots = inFlight.computeIfAbsent(p.getName(), k -> new AtomicInteger());
        if (slots.incrementAndGet() > limits.maxInFlight()) {
            slots.decrementAndGet();
            return CompletableFuture.completedFuture(settle(p, new Outcome.Failure(Outcome.Kind.OVERLOADED,
                    "more than " + limits.maxInFlight() + " checks in flight to " + p.getName())));
        }
        CompletableFuture<Outcome> call;
        try {
            Target target = target(p);
            if (target == null) {
                call = CompletableFuture.completedFuture(new Outcome.Failure(Outcome.Kind.ERROR,
                        "no healthy endpoint of " + p.getService()));
            } else {
                call = p.hasGrpc() ? grpc.check(p, target, in) : http.check(p, target, in);
            }
        } catch (RuntimeException e) {
            call = CompletableFuture.completedFuture(new Outcome.Failure(Outcome.Kind.ERROR, e.toString()));
        }
        // The slot is held until the call itself is over (bounded by the same timeout), not just the answer.
        call.whenComplete((o, t) -> slots.decrementAndGet());
        return call.copy().completeOnTimeout(new Outcome.Failure(Outcome.Kind.TIMEOUT, p.getName() + " did not answer within "
                        + p.getTimeoutMs() + " ms"), Math.max(1, p.getTimeoutMs()), TimeUnit.MILLISECONDS)
                .exceptionally(t -> new Outcome.Failure(Outcome.Kind.ERROR, String.valueOf(t)))
                .thenApply(o -> settle(p, o));
    }

    private Target target(ExtAuthzProvider p) {
        List<String> endpoints = p.getEndpointsList();
        if (!endpoints.isEmpty()) {
            String endpoint = endpoints.get((int) Math.floorMod(roundRobin.getAndIncrement(), endpoints.size()));
            Target t = Target.parse(endpoint);
            return p.containsHboneIdentities(endpoint) ? new Target(t.host(), t.port(), true) : t;
        }
        return p.getMeshService() ? null : new Target(p.getService().substring(p.getService().indexOf('/') + 1),
                p.getPort());
    }

    /** Counts the outcome and turns a failure into the provider's failOpen / statusOnError answer. */
    private Outcome settle(ExtAuthzProvider p, Outcome o) {
        String tag = switch (o) {
            case Outcome.Allow a -> "allow";
            case Outcome.Deny d -> "deny";
            case Outcome.Failure f -> f.kind().tag;
        };
        counter(p.getName(), tag).increment();
        if (!(o instanceof Outcome.Failure f)) {
            return o;
        }
        LOG.debugf("ext_authz %s: %s (%s)", p.getName(), f.reason(), p.getFailOpen() ? "fail open" : "denied");
        if (p.getFailOpen()) {
            return Outcome.Allow.plain("authorizer failed, failOpen: " + f.reason());
        }
        int status = p.getStatusOnError() == 0 ? 403 : p.getStatusOnError();
        return new Outcome.Deny(status, List.of(), "", "authorizer failed: " + f.reason());
    }

    private Counter counter(String provider, String outcome) {
        return counters.computeIfAbsent(provider + "\n" + outcome, k -> Counter.builder("waypoint_ext_authz_checks_total")
                .description("External authorization checks (AuthorizationPolicy CUSTOM) by provider and outcome")
                .tag("provider", provider).tag("outcome", outcome).register(registry));
    }

    @Override
    public void close() {
        grpc.close();
    }
}
