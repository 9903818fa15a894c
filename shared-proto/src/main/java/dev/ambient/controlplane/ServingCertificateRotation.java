package dev.ambient.controlplane;

import dev.ambient.identity.ServingCertificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * Keeps a control-plane server's certificate fresh: gets one at start, installs it in the
 * {@link ServingKeyManager}, and gets the next at half of its remaining lifetime (or at once on
 * {@link #renewNow()}, e.g. after the CA's root changed). A failure keeps the certificate in
 * use and is retried with jittered backoff. Runs on its own thread, never on an event loop.
 */
public final class ServingCertificateRotation implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ServingCertificateRotation.class);
    private static final Duration MIN_RETRY = Duration.ofMillis(500);
    private static final Duration MAX_RETRY = Duration.ofSeconds(30);

    private final String server;
    private final Supplier<ServingCertificate> issuer;
    private final ServingKeyManager keys;
    private final Duration maxInterval;
    private final ScheduledExecutorService scheduler;
    private ScheduledFuture<?> next; // scheduler thread only, or under this
    private int failures; // scheduler thread only
    private volatile String problem = "no serving certificate yet";
    private String lastLogged; // scheduler thread only

    /**
     * @param server what is served, for logs ("svc-ca gRPC")
     * @param issuer gets a new certificate; blocking; throws with the reason when it cannot
     */
    public ServingCertificateRotation(String server, Supplier<ServingCertificate> issuer, ServingKeyManager keys) {
        this(server, issuer, keys, Duration.ofDays(365));
    }

    /** @param maxInterval ask the issuer again at least this often (files that may change any time) */
    public ServingCertificateRotation(String server, Supplier<ServingCertificate> issuer, ServingKeyManager keys,
            Duration maxInterval) {
        this.server = server;
        this.issuer = issuer;
        this.keys = keys;
        this.maxInterval = maxInterval;
        this.scheduler = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().daemon().name("serving-certificate").factory());
    }

    public ServingCertificateRotation start() {
        renewNow();
        return this;
    }

    /** Tries once on the calling thread (a local source: ready as soon as the service is up), then goes on as {@link #start()}. */
    public ServingCertificateRotation startHere() {
        renew();
        return this;
    }

    /** Gets a new certificate now (and then at its half-life). */
    public synchronized void renewNow() {
        if (next != null) {
            next.cancel(false);
        }
        next = scheduler.schedule(this::renew, 0, TimeUnit.MILLISECONDS);
    }

    /** Why no valid certificate is served, or empty when one is. */
    public Optional<String> problem() {
        Optional<ServingCertificate> cert = keys.current();
        if (cert.isPresent() && cert.get().notAfter().isAfter(Instant.now())) {
            return Optional.empty();
        }
        return Optional.of(cert.isPresent() ? "the serving certificate expired at " + cert.get().notAfter()
                + " (" + problem + ")" : problem);
    }

    private void renew() {
        Duration delay;
        try {
            ServingCertificate cert = issuer.get();
            if (!keys.current().map(c -> c.leaf().equals(cert.leaf())).orElse(false)) {
                keys.install(cert);
                LOG.infof("%s serves %s", server, cert);
            }
            failures = 0;
            problem = null;
            lastLogged = null;
            // half of what is left: the certificate is backdated a minute, so its own half-life comes early
            delay = Duration.between(Instant.now(), cert.notAfter()).dividedBy(2);
            if (delay.compareTo(MIN_RETRY) < 0) {
                delay = MIN_RETRY;
            } else if (delay.compareTo(maxInterval) > 0) {
                delay = maxInterval;
            }
        } catch (RuntimeException e) {
            failures++;
            problem = "cannot get a serving certificate: " + e.getMessage();
            long base = Math.min(MAX_RETRY.toMillis(), MIN_RETRY.toMillis() << Math.min(failures, 6));
            delay = Duration.ofMillis(base / 2 + ThreadLocalRandom.current().nextLong(base / 2 + 1));
            if (!Objects.equals(problem, lastLogged)) { // once per distinct problem, not every retry
                LOG.warnf("%s: %s; %s, retrying", server, problem,
                        keys.current().map(c -> "still serving " + c).orElse("no certificate served yet"));
                lastLogged = problem;
            }
        }
        synchronized (this) {
            if (!scheduler.isShutdown()) {
                next = scheduler.schedule(this::renew, delay.toMillis(), TimeUnit.MILLISECONDS);
            }
        }
    }

    @Override
    public void close() {
        scheduler.shutdownNow();
    }
}
