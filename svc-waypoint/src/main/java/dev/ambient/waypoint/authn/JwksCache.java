package dev.ambient.waypoint.authn;

import dev.ambient.proto.l7.JwtRule;
import dev.ambient.waypoint.callout.CappedBody;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import io.vertx.ext.web.codec.BodyCodec;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * The keys of every JWT rule this waypoint holds: inline key sets read once, remote ones fetched
 * with vertx-web-client on this cache's own Vert.x event loop (never a data-plane loop), kept,
 * refreshed every {@code refreshInterval} and when a token names a key the set lacks (at most once
 * per {@code minRefetchInterval} per set, so random key ids from a hostile client cannot make the
 * waypoint fetch per request). A fetch is bounded by {@code fetchTimeout} and {@code maxBytes}; one
 * that fails keeps the last good keys, logs the reason once per failure streak and counts it in
 * {@code waypoint_jwks_fetches_total{outcome="failure"}}.
 */
public final class JwksCache implements JwtVerifier.Keys, AutoCloseable {

    private static final Logger LOG = Logger.getLogger(JwksCache.class);

    public record Settings(Duration refreshInterval, Duration minRefetchInterval, Duration fetchTimeout, int maxBytes) {
    }

    /** One remote key set. Fields are written on the cache's event loop, read anywhere. */
    private final class Remote {
        final String uri;
        volatile JwkSet keys;
        volatile CompletableFuture<JwkSet> inflight;
        volatile long lastFetchNanos = Long.MIN_VALUE / 2;
        volatile boolean failing;

        Remote(String uri) {
            this.uri = uri;
        }
    }

    private final Vertx vertx;
    private final boolean ownsVertx;
    private final WebClient client;
    private final Settings settings;
    private final Map<String, Remote> remotes = new ConcurrentHashMap<>();
    /** Inline key sets by their text (what the control plane sent: bounded by the configuration). */
    private final Map<String, JwkSet> inline = new ConcurrentHashMap<>();
    private final Counter fetchOk;
    private final Counter fetchFailed;
    private final Counter fetchLimited;
    private final long timer;

    public JwksCache(Vertx vertx, boolean ownsVertx, Settings settings, MeterRegistry registry) {
        this.vertx = vertx;
        this.ownsVertx = ownsVertx;
        this.settings = settings;
        int timeoutMillis = (int) Math.max(1, settings.fetchTimeout().toMillis());
        this.client = WebClient.create(vertx, new WebClientOptions().setConnectTimeout(timeoutMillis)
                .setIdleTimeout(timeoutMillis).setIdleTimeoutUnit(java.util.concurrent.TimeUnit.MILLISECONDS)
                .setKeepAlive(false).setFollowRedirects(false).setMaxPoolSize(4).setMaxHeaderSize(8192)
                .setUserAgent("ambient-waypoint"));
        String name = "waypoint_jwks_fetches_total";
        String help = "JWKS fetches by outcome (rate_limited: an unknown key id asked for one too soon)";
        fetchOk = Counter.builder(name).description(help).tag("outcome", "success").register(registry);
        fetchFailed = Counter.builder(name).description(help).tag("outcome", "failure").register(registry);
        fetchLimited = Counter.builder(name).description(help).tag("outcome", "rate_limited").register(registry);
        timer = vertx.setPeriodic(Math.max(1, settings.refreshInterval().toMillis()), id -> remotes.values()
                .forEach(r -> fetch(r)));
    }

    /** The keys held now for a rule; for a remote set not yet known, its first fetch starts. */
    @Override
    public JwkSet of(JwtRule rule) {
        if (!rule.getJwks().isEmpty()) {
            return inline.computeIfAbsent(rule.getJwks(), this::readInline);
        }
        Remote r = remotes.computeIfAbsent(rule.getJwksUri(), u -> {
            Remote fresh = new Remote(u);
            vertx.runOnContext(v -> fetch(fresh));
            return fresh;
        });
        return r.keys;
    }

    private JwkSet readInline(String json) {
        try {
            return JwkSet.parse(json, settings.maxBytes());
        } catch (JwkSet.Invalid e) {
            LOG.warnf("inline JWKS refused: %s; tokens of its issuer are refused", e.getMessage());
            return new JwkSet(java.util.List.of()); // held, so it is read once; verifies nothing
        }
    }

    /**
     * Keys for a rule after a fetch: the one under way, a new one, or, when an unknown key id asked
     * for one less than {@code minRefetchInterval} after the last, the keys held now (rate limited).
     */
    public CompletableFuture<JwkSet> refresh(JwtRule rule, boolean unknownKid) {
        if (!rule.getJwks().isEmpty()) {
            return CompletableFuture.completedFuture(of(rule));
        }
        of(rule);
        Remote r = remotes.get(rule.getJwksUri());
        if (r == null) {
            return CompletableFuture.completedFuture(null);
        }
        CompletableFuture<JwkSet> running = r.inflight;
        if (running != null) {
            return running;
        }
        if (unknownKid && System.nanoTime() - r.lastFetchNanos < settings.minRefetchInterval().toNanos()) {
            fetchLimited.increment();
            return CompletableFuture.completedFuture(r.keys);
        }
        CompletableFuture<JwkSet> started = new CompletableFuture<>();
        vertx.runOnContext(v -> fetch(r).whenComplete((k, e) -> started.complete(r.keys)));
        return started;
    }

    /** Forgets the remote sets no rule names any more, and the inline ones. */
    public void retain(Set<String> uris, Set<String> inlineSets) {
        remotes.keySet().retainAll(uris);
        inline.keySet().retainAll(inlineSets);
    }

    /** Runs on the cache's event loop. Completes with the keys held afterwards (never exceptionally). */
    private CompletableFuture<JwkSet> fetch(Remote r) {
        CompletableFuture<JwkSet> running = r.inflight;
        if (running != null) {
            return running;
        }
        CompletableFuture<JwkSet> done = new CompletableFuture<>();
        r.inflight = done;
        r.lastFetchNanos = System.nanoTime();
        CappedBody body = new CappedBody(settings.maxBytes());
        long deadline = vertx.setTimer(Math.max(1, settings.fetchTimeout().toMillis()),
                t -> finish(r, done, null, "no complete answer within " + settings.fetchTimeout()));
        try {
            client.getAbs(r.uri).timeout(settings.fetchTimeout().toMillis()).putHeader("accept", "application/json")
                    .as(BodyCodec.pipe(body)).send().onComplete(ar -> {
                        vertx.cancelTimer(deadline);
                        if (ar.failed()) {
                            finish(r, done, null, String.valueOf(ar.cause().getMessage()));
                        } else if (ar.result().statusCode() != 200) {
                            finish(r, done, null, "HTTP status " + ar.result().statusCode());
                        } else if (body.overflowed()) {
                            finish(r, done, null, "larger than " + settings.maxBytes() + " bytes");
                        } else {
                            try {
                                finish(r, done, JwkSet.parse(body.text(), settings.maxBytes()), null);
                            } catch (JwkSet.Invalid e) {
                                finish(r, done, null, e.getMessage());
                            }
                        }
                    });
        } catch (RuntimeException e) {
            vertx.cancelTimer(deadline);
            finish(r, done, null, e.toString());
        }
        return done;
    }

    private void finish(Remote r, CompletableFuture<JwkSet> done, JwkSet keys, String error) {
        if (done.isDone()) {
            return;
        }
        if (keys != null) {
            r.keys = keys;
            fetchOk.increment();
            if (r.failing) {
                LOG.infof("JWKS %s fetched again: %d keys", r.uri, keys.keys().size());
            }
            r.failing = false;
        } else {
            fetchFailed.increment();
            if (!r.failing) {
                LOG.warnf("JWKS %s could not be fetched: %s; %s", r.uri, error, r.keys == null
                        ? "no keys yet, its tokens are refused" : "the last good keys are kept");
            }
            r.failing = true;
        }
        if (r.inflight == done) {
            r.inflight = null;
        }
        done.complete(r.keys);
    }

    @Override
    public void close() {
        vertx.cancelTimer(timer);
        client.close();
        if (ownsVertx) {
            vertx.close();
        }
    }
}
