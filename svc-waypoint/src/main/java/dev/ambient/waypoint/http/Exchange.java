package dev.ambient.waypoint.http;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.FaultInjection;
import dev.ambient.proto.l7.HeaderMutation;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RetryPolicy;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.authz.L7Authorizer;
import dev.ambient.waypoint.proxy.UpstreamFailure;
import dev.ambient.waypoint.route.LoadBalancer;
import dev.ambient.waypoint.route.RouteTable;
import dev.ambient.waypoint.state.WaypointState;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import dev.ambient.waypoint.telemetry.AccessLog;
import dev.ambient.waypoint.telemetry.RequestLabels;
import dev.ambient.waypoint.telemetry.TraceContext;
import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * One HTTP request through the waypoint, on the inbound channel's event loop: L7 authorization,
 * route match, fault injection, header changes, a weighted backend, an endpoint by load
 * balancing, then attempts through HBONE with per-try and overall timeouts and budgeted retries
 * (connect failures, resets, and the route's retriable statuses), and finally one response,
 * metrics and an access-log line. Never blocks.
 */
final class Exchange {

    private static final String RBAC_DENIED = "RBAC: access denied";

    private final DataPath path;
    private final Tunnel tunnel;
    private final FullHttpRequest request;
    private final String protocol;
    private final EventLoop loop;
    private final Consumer<FullHttpResponse> respond;
    private final long startNanos = System.nanoTime();
    private final long requestBytes;
    private final String method;
    private String uri;
    private final String traceparent;

    private WaypointState state;
    private Route route;
    private Service backendService;
    private List<Endpoint> endpoints = List.of();
    private Endpoint lastEndpoint;
    private final Set<String> failedEndpoints = new HashSet<>();
    private int attempts;
    private boolean retrying;
    private boolean done;
    private ScheduledFuture<?> overallTimer;
    private Promise<FullHttpResponse> inFlight;
    /** HTTP/2 (prior knowledge) to the endpoint, else HTTP/1.1; see {@link UpstreamProtocol}. */
    private boolean upstreamHttp2;

    Exchange(DataPath path, Tunnel tunnel, FullHttpRequest request, String protocol, EventLoop loop,
            Consumer<FullHttpResponse> respond) {
        this.path = path;
        this.tunnel = tunnel;
        this.request = request;
        this.protocol = protocol;
        this.loop = loop;
        this.respond = respond;
        this.requestBytes = request.content().readableBytes();
        this.method = request.method().name();
        this.uri = request.uri();
        this.traceparent = TraceContext.next(request.headers().get("traceparent"));
        request.headers().set("traceparent", traceparent);
    }

    void run() {
        path.retryBudget.requestStarted();
        String judgedPath;
        switch (RequestTarget.normalize(uri, path.limits.paths())) {
            case RequestTarget.Reject r -> {
                local(400, "bad request target", "-", r.reason() + ": " + uri);
                return;
            }
            case RequestTarget.Redirect r -> {
                redirect(r.location());
                return;
            }
            case RequestTarget.Forward f -> {
                uri = f.target();
                judgedPath = f.path();
            }
        }
        request.setUri(uri); // what policy and routes judge is what the application gets
        IdentityHeaders.sanitize(request.headers(), path.self, tunnel.peer(), tunnel.peerCertificateSha256(),
                tunnel.source().getAddress().getHostAddress());
        state = path.store.current();
        RouteTable.Request match = RouteTable.Request.of(method, uri, request.headers());
        Service service = tunnel.service();

        L7Authorizer.Decision decision = path.authorizer.evaluate(state.policies(), service,
                new L7Authorizer.Request(tunnel.peer(), tunnel.source().getAddress(), tunnel.target().getAddress(),
                        tunnel.target().getPort(), new L7Authorizer.Http(method, judgedPath,
                                request.headers().get(HttpHeaderNames.HOST), request.headers())));
        if (!decision.allowed()) {
            local(403, RBAC_DENIED, "-", decision.reason());
            return;
        }

        int port = tunnel.target().getPort();
        if (service != null) {
            Optional<ServiceRoutes> table = state.routes(service).filter(t -> RouteTable.coversPort(t, port));
            if (table.isPresent()) {
                Optional<Route> r = RouteTable.match(table.get(), match);
                if (r.isEmpty()) {
                    local(404, "route not found", "NR", "no route of " + WaypointState.key(service) + " matched");
                    return;
                }
                route = r.get();
            }
        }
        if (route != null && route.getDirectResponseStatus() != 0) {
            local(route.getDirectResponseStatus(), "", "DR", "direct response of route " + route.getName());
            return;
        }
        if (route != null && route.hasFault()) {
            FaultInjection fault = route.getFault();
            if (fault.getAbortStatus() != 0 && chance(fault.getAbortPercent())) {
                local(fault.getAbortStatus(), "fault filter abort", "FI", "fault injection abort");
                return;
            }
            if (fault.getDelayMs() > 0 && chance(fault.getDelayPercent())) {
                loop.schedule(this::forward, fault.getDelayMs(), TimeUnit.MILLISECONDS);
                return;
            }
        }
        forward();
    }

    private void forward() {
        if (done) {
            return;
        }
        int port = tunnel.target().getPort();
        if (route != null) {
            mutate(request.headers(), route.getRequestHeaderMutationsList());
            Optional<WeightedBackend> backend = RouteTable.pickBackend(route.getBackendsList());
            if (backend.isEmpty()) {
                local(500, "no backend", "NR", "route " + route.getName() + " has no backend with weight");
                return;
            }
            backendService = state.serviceByKey(backend.get().getService()).orElse(null);
            if (backendService == null) {
                local(500, "backend not found", "NR", "backend " + backend.get().getService() + " is unknown");
                return;
            }
            int backendPort = backend.get().getPort() == 0 ? port : backend.get().getPort();
            endpoints = state.endpoints(backendService, backendPort);
            upstreamHttp2 = UpstreamProtocol.http2(WaypointState.appProtocol(backendService, backendPort), downstreamHttp2());
        } else if (tunnel.service() != null) {
            backendService = tunnel.service();
            endpoints = state.endpoints(backendService, port);
            upstreamHttp2 = UpstreamProtocol.http2(WaypointState.appProtocol(backendService, port), downstreamHttp2());
        } else {
            Workload w = tunnel.workload();
            endpoints = List.of(new Endpoint(w, tunnel.target().getAddress(), port));
            upstreamHttp2 = downstreamHttp2();
        }
        if (endpoints.isEmpty()) {
            local(503, "no healthy upstream", "UH", "no healthy endpoint of "
                    + (backendService == null ? "?" : WaypointState.key(backendService)));
            return;
        }
        boolean teTrailers = request.headers().containsValue(HttpHeaderNames.TE, "trailers", true);
        stripHopByHop(request.headers());
        if (upstreamHttp2 && teTrailers) {
            request.headers().set(HttpHeaderNames.TE, "trailers"); // the one TE HTTP/2 allows; gRPC needs it
        }
        request.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, request.content().readableBytes());
        if (route != null && route.getTimeoutMs() > 0) {
            overallTimer = loop.schedule(() -> {
                if (!done) {
                    // Answer first, so that failing the attempt below cannot start a retry.
                    local(504, "upstream request timeout", "UT", "route timeout " + route.getTimeoutMs() + " ms");
                    if (inFlight != null) {
                        inFlight.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.TIMEOUT, "request timeout"));
                    }
                }
            }, route.getTimeoutMs(), TimeUnit.MILLISECONDS);
        }
        attempt();
    }

    private void attempt() {
        if (done) {
            return;
        }
        String serviceKey = backendService == null ? tunnel.workload().getUid() : WaypointState.key(backendService);
        Endpoint ep = path.balancer.pick(serviceKey, endpoints, failedEndpoints);
        lastEndpoint = ep;
        attempts++;
        LoadBalancer.Stats stats = path.balancer.stats(ep.uid());
        stats.begin();
        SpiffeId expected = identity(ep.workload());
        Promise<FullHttpResponse> p = path.upstream.send(ep, expected, request.retainedDuplicate(), loop,
                upstreamHttp2);
        inFlight = p;
        RetryPolicy retry = route != null && route.hasRetry() ? route.getRetry() : null;
        ScheduledFuture<?> perTry = retry != null && retry.getPerTryTimeoutMs() > 0
                ? loop.schedule(() -> p.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.TIMEOUT,
                        "per-try timeout " + retry.getPerTryTimeoutMs() + " ms")), retry.getPerTryTimeoutMs(),
                        TimeUnit.MILLISECONDS)
                : null;
        // The promise belongs to this loop: its listeners already run here.
        p.addListener(f -> {
            stats.end();
            if (perTry != null) {
                perTry.cancel(false);
            }
            if (f.isSuccess()) {
                onResponse(ep, p.getNow());
            } else {
                onFailure(ep, f.cause());
            }
        });
    }

    private void onResponse(Endpoint ep, FullHttpResponse response) {
        if (done) {
            response.release();
            return;
        }
        int status = response.status().code();
        if (status >= 500) {
            path.balancer.failed(ep, endpoints, "status " + status);
        } else {
            path.balancer.succeeded(ep);
        }
        if (retriableStatus(status) && retry("status " + status, ep)) {
            response.release();
            return;
        }
        if (route != null) {
            mutate(response.headers(), route.getResponseHeaderMutationsList());
        }
        finish(response, status, attempts > 1 && status >= 500 ? "URX" : "-", null);
    }

    private void onFailure(Endpoint ep, Throwable cause) {
        if (done) {
            return;
        }
        UpstreamFailure f = cause instanceof UpstreamFailure u ? u
                : new UpstreamFailure(UpstreamFailure.Kind.RESET, String.valueOf(cause.getMessage()));
        if (f.kind() != UpstreamFailure.Kind.TOO_LARGE && f.kind() != UpstreamFailure.Kind.OVERLOADED) {
            path.balancer.failed(ep, endpoints, f.getMessage());
        }
        if (retriableFailure(f.kind()) && retry(f.getMessage(), ep)) {
            return;
        }
        switch (f.kind()) {
            case CONNECT -> local(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    + "connection failure", "UF", f.getMessage());
            case RESET -> local(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    + "connection termination", "UC", f.getMessage());
            case PROTOCOL -> local(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    + "protocol error", "UPE", f.getMessage());
            case TIMEOUT -> local(504, "upstream request timeout", "UT", f.getMessage());
            case TOO_LARGE -> local(502, "upstream response too large", "UMSDR", f.getMessage());
            case OVERLOADED -> local(503, "waypoint overloaded: buffered bodies at their limit", "UO",
                    f.getMessage());
        }
    }

    /** Schedules another attempt if the policy, the attempts left and the budget allow it. */
    private boolean retry(String why, Endpoint failed) {
        RetryPolicy retry = route != null && route.hasRetry() ? route.getRetry() : null;
        if (retry == null || attempts > retry.getAttempts()) {
            return false;
        }
        int budget = retry.getBudgetPercent() > 0 ? retry.getBudgetPercent() : path.defaultRetryBudgetPercent;
        if (!retrying) {
            if (!path.retryBudget.tryRetry(budget)) {
                return false; // budget exhausted: the failure is answered as it is
            }
            retrying = true;
        }
        failedEndpoints.add(failed.uid());
        long base = retry.getBackoffBaseMs() > 0 ? retry.getBackoffBaseMs() : 25;
        long cap = Math.min(base << Math.min(attempts - 1, 10), 10 * base);
        long delay = ThreadLocalRandom.current().nextLong(cap + 1);
        loop.schedule(this::attempt, delay, TimeUnit.MILLISECONDS);
        return true;
    }

    private List<String> retryOn() {
        return route.getRetry().getRetryOnList();
    }

    private boolean retriableStatus(int status) {
        if (route == null || !route.hasRetry()) {
            return false;
        }
        List<String> on = retryOn();
        if (on.isEmpty()) {
            return status == 503; // Istio's default retriable status
        }
        return on.contains(Integer.toString(status)) || (status >= 500 && on.contains("5xx"))
                || ((status == 502 || status == 503 || status == 504) && on.contains("gateway-error"));
    }

    private boolean retriableFailure(UpstreamFailure.Kind kind) {
        if (route == null || !route.hasRetry()) {
            return false;
        }
        List<String> on = retryOn();
        return switch (kind) {
            // A connect failure never reached the application: always safe to retry (as Istio's defaults).
            case CONNECT -> true;
            case RESET -> on.isEmpty() || on.contains("reset") || on.contains("5xx") || on.contains("gateway-error");
            case PROTOCOL -> on.contains("5xx") || on.contains("gateway-error");
            case TIMEOUT -> on.isEmpty() || on.contains("5xx") || on.contains("gateway-error");
            case TOO_LARGE, OVERLOADED -> false;
        };
    }

    /** Answers from the waypoint itself (policy, routing, faults, upstream failures). */
    private void local(int status, String body, String flags, String reason) {
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(status),
                Unpooled.copiedBuffer(body, StandardCharsets.UTF_8));
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain");
        r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, r.content().readableBytes());
        finish(r, status, flags, reason);
    }

    /** UNESCAPE_AND_REDIRECT: 307 to the unescaped path, as Envoy answers it. */
    private void redirect(String location) {
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.TEMPORARY_REDIRECT,
                Unpooled.EMPTY_BUFFER);
        r.headers().set(HttpHeaderNames.LOCATION, location);
        r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, 0);
        finish(r, 307, "-", "escaped slashes: redirected to " + location);
    }

    private void finish(FullHttpResponse response, int status, String flags, String reason) {
        if (done) {
            response.release();
            return;
        }
        done = true;
        if (overallTimer != null) {
            overallTimer.cancel(false);
        }
        if (retrying) {
            path.retryBudget.retryEnded();
        }
        path.retryBudget.requestEnded();
        long responseBytes = response.content().readableBytes();
        response.headers().set("traceparent", traceparent);
        request.release();
        respond.accept(response);

        double millis = (System.nanoTime() - startNanos) / 1e6;
        Workload src = tunnel.sourceWorkload();
        Workload dst = lastEndpoint == null ? tunnel.workload() : lastEndpoint.workload();
        Service svc = backendService != null ? backendService : tunnel.service();
        String peer = tunnel.peer() == null ? "unknown" : tunnel.peer().uri();
        path.metrics.record(new RequestLabels(
                src == null ? "unknown" : workloadName(src), src == null ? "unknown" : src.getNamespace(), peer,
                dst == null ? "unknown" : workloadName(dst), dst == null ? "unknown" : dst.getNamespace(),
                dst == null || (lastEndpoint != null && lastEndpoint.external()) ? "unknown" : identity(dst).uri(),
                svc == null ? "unknown" : svc.getHostname(), svc == null ? "unknown" : svc.getName(),
                svc == null ? "unknown" : svc.getNamespace(),
                Integer.toString(status), "http", flags), millis, requestBytes, responseBytes);
        AccessLog.request(method, uri, protocol, status, flags, requestBytes, responseBytes, millis,
                lastEndpoint == null ? "-" : lastEndpoint.describe(),
                tunnel.source().getAddress().getHostAddress() + ":" + tunnel.source().getPort(), peer,
                tunnel.describe(), route == null ? "-" : route.getName(), attempts, traceparent, reason);
    }

    /** The client went away: stop retrying and drop what is pending. */
    void abandon() {
        if (!done) {
            local(499, "", "DC", "client closed the stream");
            if (inFlight != null) {
                inFlight.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.RESET, "client went away"));
            }
        }
    }

    private SpiffeId identity(Workload w) {
        String td = w.getTrustDomain().isEmpty() ? path.trustDomain : w.getTrustDomain();
        return new SpiffeId(td, w.getNamespace(), w.getServiceAccount().isEmpty() ? "default" : w.getServiceAccount());
    }

    private static String workloadName(Workload w) {
        if (!w.getWorkloadName().isEmpty()) {
            return w.getWorkloadName();
        }
        return w.getCanonicalName().isEmpty() ? w.getName() : w.getCanonicalName();
    }

    private static boolean chance(double percent) {
        return percent >= 100 || ThreadLocalRandom.current().nextDouble(100) < percent;
    }

    static void mutate(HttpHeaders headers, List<HeaderMutation> mutations) {
        for (HeaderMutation m : mutations) {
            switch (m.getOp()) {
                case SET -> headers.set(m.getName(), m.getValue());
                case ADD -> headers.add(m.getName(), m.getValue());
                case REMOVE -> headers.remove(m.getName());
                default -> {
                }
            }
        }
    }

    private boolean downstreamHttp2() {
        return "HTTP/2".equals(protocol);
    }

    /** Headers that belong to one connection, and what HTTP/2 to HTTP/1 conversion adds for itself. */
    static void stripHopByHop(HttpHeaders h) {
        String connection = h.get(HttpHeaderNames.CONNECTION);
        if (connection != null) {
            for (String name : connection.split(",")) {
                h.remove(name.trim());
            }
        }
        h.remove(HttpHeaderNames.CONNECTION);
        h.remove("keep-alive");
        h.remove("proxy-connection");
        h.remove(HttpHeaderNames.TE);
        h.remove(HttpHeaderNames.TRANSFER_ENCODING);
        h.remove(HttpHeaderNames.UPGRADE);
        h.remove("x-http2-stream-id");
        h.remove("x-http2-scheme");
        h.remove("x-http2-stream-weight");
        h.remove("x-http2-stream-dependency-id");
    }
}
