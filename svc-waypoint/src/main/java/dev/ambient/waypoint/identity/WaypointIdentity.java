package dev.ambient.waypoint.identity;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.identity.CertificateClient;
import dev.ambient.identity.HboneTls;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import io.netty.handler.ssl.SslContext;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.jboss.logging.Logger;

/**
 * The waypoint's own certificate (one identity: its service account) and the HBONE TLS contexts
 * built from it, renewed at half-life. A failed renewal keeps the current certificate and retries
 * with jittered backoff; new contexts apply to new connections only.
 */
public final class WaypointIdentity implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(WaypointIdentity.class);

    /** A certificate and the server and client contexts built from it. */
    public record TlsMaterial(WorkloadCertificate certificate, SslContext server, SslContext client) {
    }

    private record Issued(WorkloadCertificate certificate, List<X509Certificate> roots) {
    }

    private final SpiffeId id;
    private final Function<SpiffeId, CompletableFuture<Issued>> source;
    private final String description;
    private final AutoCloseable closeable;
    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "waypoint-certificate");
        t.setDaemon(true);
        return t;
    });
    private volatile TlsMaterial current;
    private volatile String lastError;
    private int failures;

    private WaypointIdentity(SpiffeId id, Function<SpiffeId, CompletableFuture<Issued>> source, String description,
            AutoCloseable closeable) {
        this.id = id;
        this.source = source;
        this.description = description;
        this.closeable = closeable;
    }

    /** Standalone: signed by a root kept in {@code dir} (created on first use), shared with the ztunnels of the box. */
    public static WaypointIdentity local(SpiffeId id, Path dir, Duration lifetime) {
        CertificateAuthority ca = CertificateAuthority.loadOrCreate(dir, id.trustDomain(), Duration.ofDays(3650));
        return new WaypointIdentity(id, sid -> {
            try {
                return CompletableFuture.completedFuture(new Issued(ca.issue(sid, lifetime), List.of(ca.root())));
            } catch (RuntimeException e) {
                return CompletableFuture.failedFuture(e);
            }
        }, "local root in " + dir, null);
    }

    /** From svc-ca (verified by the mounted mesh root): a CSR sent with the waypoint's service-account token. */
    public static WaypointIdentity fromCa(SpiffeId id, ControlPlaneEndpoint ca, Duration lifetime) {
        CertificateClient client = new CertificateClient(ca, lifetime, "waypoint-ca-client");
        return new WaypointIdentity(id, sid -> client.issue(sid, Map.of())
                .thenApply(i -> new Issued(i.certificate(), i.roots())), "ca at " + ca, client);
    }

    public WaypointIdentity start() {
        scheduler.execute(this::fetch);
        return this;
    }

    public SpiffeId id() {
        return id;
    }

    /** The current material, or null before the first certificate. */
    public TlsMaterial current() {
        return current;
    }

    /** Holds a certificate that is valid now. */
    public boolean valid() {
        TlsMaterial m = current;
        return m != null && m.certificate().validAt(Instant.now());
    }

    public String lastError() {
        return lastError;
    }

    public String describe() {
        return description;
    }

    private void fetch() {
        try {
            Issued issued = source.apply(id).get(30, TimeUnit.SECONDS);
            List<X509Certificate> roots = issued.roots().isEmpty() ? List.of(issued.certificate().root())
                    : issued.roots();
            current = new TlsMaterial(issued.certificate(), HboneTls.serverContext(issued.certificate(), roots),
                    HboneTls.clientContext(issued.certificate(), roots));
            failures = 0;
            lastError = null;
            Instant renewAt = issued.certificate().renewAt();
            long delay = Math.max(1_000, Duration.between(Instant.now(), renewAt).toMillis());
            LOG.infof("certificate for %s from %s: valid until %s, renewing at %s", id, description,
                    issued.certificate().notAfter(), renewAt);
            scheduler.schedule(this::fetch, delay, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            failures++;
            Throwable cause = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null
                    ? e.getCause() : e;
            lastError = cause.getMessage();
            long base = Math.min(300_000, 1_000L << Math.min(failures, 9));
            long delay = base / 2 + ThreadLocalRandom.current().nextLong(base / 2 + 1);
            LOG.warnf("certificate for %s from %s failed (%s); %s, retrying in %d ms", id, description,
                    lastError, current == null ? "no certificate yet" : "keeping the current one", delay);
            scheduler.schedule(this::fetch, delay, TimeUnit.MILLISECONDS);
        }
    }

    @Override
    public void close() {
        scheduler.shutdownNow();
        if (closeable != null) {
            try {
                closeable.close();
            } catch (Exception ignored) {
                // closing
            }
        }
    }
}
