package dev.ambient.net;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * A plain HTTP/1.1 listener for endpoints every pod can reach without credentials (probes,
 * metrics): each accepted connection is admitted by source address and in all
 * ({@link SourceAdmission}) before a byte is read, else closed at once; a connection must send its
 * first request within a short time, and an idle one is closed after {@code idleTimeout}; headers
 * are bounded. Each refusal is counted ({@link Refusals}) and logged at most once per 10 s per kind.
 * Quarkus's own listeners have no per-connection hook and no per-source bound, so a service
 * disables them and serves Quarkus's handlers from here.
 */
public final class BoundedHttpListener {

    private static final Logger LOG = Logger.getLogger(BoundedHttpListener.class);

    /** What one listener allows. */
    public record Limits(int perSource, int total, Duration idleTimeout, Duration firstRequestTimeout,
            int maxHeaderSize, int maxInitialLineLength) {
    }

    /** Counts a refusal (e.g. a metric labelled by listener and limit). */
    @FunctionalInterface
    public interface Refusals {
        void refused(String listener, ListenerLimit limit);
    }

    private final Vertx vertx;
    private final String name;
    private final Limits limits;
    private final Handler<HttpServerRequest> handler;
    private final Refusals refusals;
    private final SourceAdmission admission;
    private final Map<ListenerLimit, LineThrottle> lines = new EnumMap<>(ListenerLimit.class);
    /** Connections still waiting for their first request: the timer that closes them. */
    private final Map<HttpConnection, Long> awaitingRequest = new ConcurrentHashMap<>();
    private HttpServer server;

    public BoundedHttpListener(Vertx vertx, String name, Limits limits, Handler<HttpServerRequest> handler,
            Refusals refusals) {
        this.vertx = vertx;
        this.name = name;
        this.limits = limits;
        this.handler = handler;
        this.refusals = refusals;
        this.admission = new SourceAdmission(limits.perSource(), limits.total());
        for (ListenerLimit limit : ListenerLimit.values()) {
            lines.put(limit, new LineThrottle(Duration.ofSeconds(10)));
        }
    }

    public Future<HttpServer> listen(String host, int port) {
        HttpServerOptions options = new HttpServerOptions()
                .setHost(host)
                .setPort(port)
                .setIdleTimeout((int) limits.idleTimeout().toMillis())
                .setIdleTimeoutUnit(TimeUnit.MILLISECONDS)
                .setMaxHeaderSize(limits.maxHeaderSize())
                .setMaxInitialLineLength(limits.maxInitialLineLength())
                // Probes and scrapes speak HTTP/1.1; no h2c upgrade, no compression to pay for.
                .setHttp2ClearTextEnabled(false)
                .setCompressionSupported(false);
        server = vertx.createHttpServer(options)
                .connectionHandler(this::accepted)
                .requestHandler(request -> {
                    Long timer = awaitingRequest.remove(request.connection());
                    if (timer != null) {
                        vertx.cancelTimer(timer);
                    }
                    handler.handle(request);
                });
        return server.listen();
    }

    private void accepted(HttpConnection connection) {
        String source = connection.remoteAddress().hostAddress();
        switch (admission.admit(source, connection::close)) {
            case SourceAdmission.Refused refused -> {
                connection.close();
                refused(refused.limit(), source, refused.limit() == ListenerLimit.PER_SOURCE
                        ? "it holds " + refused.held() + ", the most one source may"
                        : "all " + refused.held() + " places are taken, none by a source holding two more than it");
            }
            case SourceAdmission.Admitted admitted -> {
                connection.closeHandler(v -> {
                    admitted.place().release();
                    Long timer = awaitingRequest.remove(connection);
                    if (timer != null) {
                        vertx.cancelTimer(timer);
                    }
                });
                long timer = vertx.setTimer(limits.firstRequestTimeout().toMillis(), id -> {
                    if (awaitingRequest.remove(connection) != null) {
                        connection.close();
                        refused(ListenerLimit.FIRST_REQUEST_TIMEOUT, source,
                                "no request within " + limits.firstRequestTimeout().toMillis() + " ms of accept");
                    }
                });
                awaitingRequest.put(connection, timer);
                if (admitted.displaced() != null) {
                    refused(ListenerLimit.DISPLACED, admitted.displaced().source(), "all " + limits.total()
                            + " places were taken; its oldest connection made room for " + source);
                }
            }
        }
    }

    private void refused(ListenerLimit limit, String source, String why) {
        refusals.refused(name, limit);
        int unlogged = lines.get(limit).event();
        if (unlogged != LineThrottle.NOT_DUE) {
            LOG.warnf("%s listener: closed a connection from %s (%s): %s%s", name, source, limit.words(), why,
                    unlogged == 0 ? "" : "; " + unlogged + " more like it not logged since the last line");
        }
    }

    public int port() {
        return server == null ? -1 : server.actualPort();
    }

    /** Connections admitted and open now. */
    public int connections() {
        return admission.held();
    }

    public Future<Void> close() {
        return server == null ? Future.succeededFuture() : server.close();
    }
}
