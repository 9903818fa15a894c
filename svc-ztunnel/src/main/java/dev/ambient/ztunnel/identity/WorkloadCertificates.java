package dev.ambient.ztunnel.identity;

import dev.ambient.identity.HboneTls;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import io.netty.handler.ssl.SslContext;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * The certificates of the identities this ztunnel serves, with their TLS contexts, renewed at
 * half-life. A renewal that fails keeps the current certificate and retries with jittered
 * backoff, so a CA outage never drops traffic while the certificate is still valid. Renewal only
 * swaps the contexts used for new connections; established ones keep going.
 */
public final class WorkloadCertificates implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(WorkloadCertificates.class);
    private static final Duration MIN_RETRY = Duration.ofSeconds(1);
    private static final Duration MAX_RETRY = Duration.ofMinutes(5);

    /** A certificate and the HBONE contexts built from it. */
    public record TlsMaterial(WorkloadCertificate certificate, SslContext server, SslContext client) {
    }

    /** For the config dump. */
    public record Status(String identity, String state, Instant notBefore, Instant notAfter, Instant renewAt,
            String serial, String lastError) {
    }

    private final CertificateSource source;
    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "ztunnel-certificates");
        t.setDaemon(true);
        return t;
    });
    private final Map<SpiffeId, Entry> entries = new ConcurrentHashMap<>();

    private final class Entry {
        final SpiffeId id;
        volatile CompletableFuture<TlsMaterial> first = new CompletableFuture<>();
        volatile TlsMaterial current;
        volatile Instant renewsAt;
        volatile String lastError;
        volatile int failures;
        volatile boolean removed;

        Entry(SpiffeId id) {
            this.id = id;
        }
    }

    public WorkloadCertificates(CertificateSource source) {
        this.source = source;
    }

    public CertificateSource source() {
        return source;
    }

    /** The material for an identity; the first call fetches it, later calls return the current one. */
    public CompletableFuture<TlsMaterial> forIdentity(SpiffeId id) {
        Entry e = entries.computeIfAbsent(id, k -> {
            Entry n = new Entry(k);
            scheduler.execute(() -> fetch(n));
            return n;
        });
        TlsMaterial m = e.current;
        return m != null ? CompletableFuture.completedFuture(m) : e.first;
    }

    /** The current material, if already fetched (for listeners that must answer synchronously). */
    public Optional<TlsMaterial> current(SpiffeId id) {
        Entry e = entries.get(id);
        return e == null ? Optional.empty() : Optional.ofNullable(e.current);
    }

    /** Stops renewing identities no longer served here. */
    public void retainOnly(java.util.Set<SpiffeId> wanted) {
        entries.values().removeIf(e -> {
            if (!wanted.contains(e.id)) {
                e.removed = true;
                return true;
            }
            return false;
        });
    }

    public List<Status> status() {
        return entries.values().stream().map(e -> {
            TlsMaterial m = e.current;
            if (m == null) {
                return new Status(e.id.uri(), e.lastError == null ? "pending" : "failing", null, null, null, null,
                        e.lastError);
            }
            WorkloadCertificate c = m.certificate();
            boolean expired = c.notAfter().isBefore(Instant.now());
            return new Status(e.id.uri(), expired ? "expired" : "valid", c.notBefore(), c.notAfter(), e.renewsAt,
                    c.leaf().getSerialNumber().toString(16), e.lastError);
        }).sorted(Comparator.comparing(Status::identity)).toList();
    }

    private void fetch(Entry e) {
        if (e.removed) {
            return;
        }
        source.issue(e.id).whenComplete((cert, err) -> {
            if (err == null) {
                try {
                    var roots = source.trustRoots();
                    TlsMaterial m = new TlsMaterial(cert, HboneTls.serverContext(cert, roots),
                            HboneTls.clientContext(cert, roots));
                    e.current = m;
                    e.lastError = null;
                    e.failures = 0;
                    e.first.complete(m);
                    LOG.infof("certificate for %s issued by %s, valid until %s, renewal in %s", e.id,
                            source.describe(), cert.notAfter(), renewalDelay(cert));
                    Duration delay = renewalDelay(cert);
                    e.renewsAt = Instant.now().plus(delay);
                    schedule(e, delay);
                    return;
                } catch (RuntimeException ex) {
                    err = ex;
                }
            }
            e.failures++;
            e.lastError = err.getMessage();
            Duration backoff = backoff(e.failures);
            TlsMaterial m = e.current;
            if (m != null && m.certificate().notAfter().isAfter(Instant.now())) {
                LOG.warnf("certificate renewal for %s failed (%s); keeping the current one, valid until %s; retry in %s",
                        e.id, err.getMessage(), m.certificate().notAfter(), backoff);
            } else {
                LOG.warnf("certificate for %s unavailable (%s); retry in %s", e.id, err.getMessage(), backoff);
            }
            schedule(e, backoff);
        });
    }

    private void schedule(Entry e, Duration delay) {
        if (!e.removed && !scheduler.isShutdown()) {
            scheduler.schedule(() -> fetch(e), Math.max(0, delay.toMillis()), TimeUnit.MILLISECONDS);
        }
    }

    /**
     * Half of the remaining lifetime, counted from now rather than from notBefore: CAs backdate
     * notBefore for clock skew, which for short lifetimes would put the half-life in the past.
     */
    static Duration renewalDelay(WorkloadCertificate cert) {
        Duration remaining = Duration.between(Instant.now(), cert.notAfter());
        Duration half = remaining.dividedBy(2);
        return half.compareTo(MIN_RETRY) < 0 ? MIN_RETRY : half;
    }

    static Duration backoff(int failures) {
        long base = MIN_RETRY.toMillis() << Math.min(failures - 1, 16);
        long capped = Math.min(base, MAX_RETRY.toMillis());
        // Jitter so that many ztunnels do not retry against a recovering CA in lockstep.
        return Duration.ofMillis(capped / 2 + ThreadLocalRandom.current().nextLong(capped / 2 + 1));
    }

    @Override
    public void close() {
        scheduler.shutdownNow();
        if (source instanceof AutoCloseable closeable) {
            try {
                closeable.close();
            } catch (Exception e) {
                LOG.debugf("closing %s: %s", source.describe(), e.getMessage());
            }
        }
    }
}
