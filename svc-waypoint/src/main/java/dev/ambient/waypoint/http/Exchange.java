package dev.ambient.waypoint.http;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.FaultInjection;
import dev.ambient.proto.l7.HeaderMutation;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RetryPolicy;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.UrlRewrite;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.l7.JwtRule;
import dev.ambient.waypoint.authn.AuthnFailure;
import dev.ambient.waypoint.authn.RequestAuth;
import dev.ambient.waypoint.authn.RequestAuthenticator;
import dev.ambient.waypoint.authz.L7Authorizer;
import dev.ambient.waypoint.extauthz.BodySettings;
import dev.ambient.waypoint.extauthz.CheckBody;
import dev.ambient.waypoint.extauthz.CheckInput;
import dev.ambient.waypoint.extauthz.Outcome;
import dev.ambient.waypoint.proxy.TcpSplice;
import dev.ambient.waypoint.proxy.UpstreamCall;
import dev.ambient.waypoint.proxy.UpstreamFailure;
import dev.ambient.waypoint.route.LoadBalancer;
import dev.ambient.waypoint.route.RouteRewrites;
import dev.ambient.waypoint.route.RouteTable;
import dev.ambient.waypoint.state.WaypointState;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import dev.ambient.waypoint.telemetry.AccessLog;
import dev.ambient.waypoint.telemetry.RequestLabels;
import dev.ambient.waypoint.telemetry.TraceContext;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One HTTP request through the waypoint, streamed both ways, on the client's event loop:
 * RequestAuthentication (JWT; the only step that may wait, for keys fetched off this loop), L7
 * authorization and routing on the request's head, fault injection, header changes, a weighted
 * backend and an endpoint, then attempts through HBONE. The request's body flows to the endpoint
 * as it arrives, and the response's back to the client as it is read, each paced by the other
 * side (backpressure), so no body is held whole; the one exception is a CUSTOM check whose
 * provider takes the body, which holds up to its maxRequestBytes first ({@link HeldBodies}).
 *
 * <p>Retries happen only before the response has begun (its head goes to the client at once) and
 * only while the whole body so far is held ({@link RetryBuffer}, kept only when the route retries,
 * bounded per request and across the waypoint); a body that outgrew that bound is not sent twice.
 * Timeouts, as Envoy's: per try from the request's end until the response's head; the route's
 * from the request's end until the response's end (a response already begun is reset); and
 * {@code stream-idle-timeout} when no byte moves either way. A WebSocket upgrade the endpoint
 * accepts becomes a byte tunnel. Metrics and one access-log line when it is over. Never blocks.
 */
final class Exchange {

    private static final String RBAC_DENIED = "RBAC: access denied";
    /** Istio's default retry_on (pilot's retry.DefaultPolicy, 503 included). */
    private static final List<String> ISTIO_RETRY_ON = List.of("connect-failure", "refused-stream", "unavailable",
            "cancelled", "503");
    /** What a route that says nothing about retries gets, as in Istio 1.24+: 2 more attempts, another endpoint each. */
    static final RetryPolicy ISTIO_DEFAULT_RETRY = RetryPolicy.newBuilder().setAttempts(2)
            .addAllRetryOn(ISTIO_RETRY_ON).build();
    /** Methods a retry may send again after the endpoint got their body (RFC 9110's idempotent methods). */
    private static final Set<String> IDEMPOTENT = Set.of("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE");

    private final DataPath path;
    private final Tunnel tunnel;
    private final HttpRequest head;
    private final Downstream downstream;
    private final EventLoop loop;
    private final long startNanos = System.nanoTime();
    private final String method;
    /** The target as the client sent it (the access log's path); {@link #uri} is what is forwarded. */
    private final String clientUri;
    private String uri;
    private final String traceparent;
    private final boolean grpc;
    private final boolean expectContinue;
    /** The protocol of a supported upgrade (websocket), else null. */
    private final String upgrade;

    private WaypointState state;
    /** What the request's verified JWT says, for policies judged again after a rewrite. */
    private RequestAuth requestAuth = RequestAuth.NONE;
    /** Headers an ext_authz allow asked for on the response (headersToDownstreamOnAllow). */
    private List<Map.Entry<String, String>> authorizerResponseHeaders = List.of();
    private Route route;
    /** The retry policy in force: the route's, else Istio's default; null = none. */
    private RetryPolicy retry;
    /** RequestMirror copies not yet sent (taking the body as it passes). */
    private List<MirrorCopy> mirrors = List.of();
    private Service backendService;
    private List<Endpoint> endpoints = List.of();
    private Endpoint lastEndpoint;
    private final Set<String> failedEndpoints = new HashSet<>();
    private boolean upstreamHttp2;
    private HttpRequest upstreamHead;
    private int attempts;
    private boolean retrying;
    private Attempt attempt;

    /** Request parts not yet written to the current attempt (it is connecting). */
    private final ArrayDeque<HttpContent> unsent = new ArrayDeque<>();
    /** The body held for a CUSTOM check that takes it (includeRequestBodyInCheck); null otherwise. */
    private HeldBody heldBody;
    /** What to do once enough of the body is held; non-null only while holding it (reading it for the check). */
    private Runnable whenBodyHeld;
    private ScheduledFuture<?> bodyTimer;
    /** The waypoint said 100 Continue itself already (to get a body it holds for a check). */
    private boolean continued;
    /** A copy of the body so far while a retry may need it; null once none can. */
    private RetryBuffer retryBuffer;
    private boolean forwarding;
    private boolean requestEnded;
    private long requestBytes;

    /** The response's head went to the client: no retry, no local answer any more. */
    private boolean committed;
    private boolean done;
    private int status;
    private String grpcStatus;
    private String flags = "-";
    private long responseBytes;
    private String notRetried;

    private ScheduledFuture<?> routeTimer;
    private ScheduledFuture<?> idleTimer;
    private long lastActivity = System.nanoTime();

    /**
     * @param head a request head without its body (which comes through {@link #requestContent})
     * @param upgrade the protocol a supported upgrade asks for, or null
     */
    Exchange(DataPath path, Tunnel tunnel, HttpRequest head, String upgrade, Downstream downstream, EventLoop loop) {
        this.path = path;
        this.tunnel = tunnel;
        this.head = head;
        this.upgrade = upgrade;
        this.downstream = downstream;
        this.loop = loop;
        this.method = head.method().name();
        this.uri = head.uri();
        this.clientUri = uri;
        this.grpc = Grpc.isGrpc(head.headers());
        this.expectContinue = HttpUtil.is100ContinueExpected(head) && !HttpMethod.HEAD.equals(head.method());
        this.traceparent = TraceContext.next(head.headers().get("traceparent"));
        head.headers().set("traceparent", traceparent);
    }

    // ------------------------------------------------------------------ the request

    /** The head is here: policy, routing, faults, then forwarding. */
    void start() {
        path.retryBudget.requestStarted();
        armIdleTimer();
        String judgedPath;
        switch (RequestTarget.normalize(uri, path.limits.paths())) {
            case RequestTarget.Reject r -> {
                local(400, "bad request target", "-", r.reason() + ": " + uri);
                return;
            }
            case RequestTarget.Redirect r -> {
                redirect(307, r.location(), "escaped slashes: redirected to " + r.location());
                return;
            }
            case RequestTarget.Forward f -> {
                uri = f.target();
                judgedPath = f.path();
            }
        }
        head.setUri(uri); // what policy and routes judge is what the application gets
        IdentityHeaders.sanitize(head.headers(), path.self, tunnel.peer(), tunnel.peerCertificateSha256(),
                tunnel.source().getAddress().getHostAddress());
        state = path.store.current();
        Service service = tunnel.service();
        List<JwtRule> jwtRules = RequestAuthenticator.applicable(state.authentications(),
                path.authorizer.gatewayTarget(), service == null ? null : "Service/" + WaypointState.key(service));
        CompletableFuture<RequestAuthenticator.Outcome> authn = path.authenticator.authenticate(jwtRules, head,
                tunnel.peer() == null ? "" : tunnel.peer().uri(), loop);
        if (authn.isDone()) {
            authenticated(authn.join(), judgedPath);
        } else {
            // Keys are being fetched (off this loop); the body waits in the unsent queue meanwhile.
            authn.whenComplete((o, e) -> loop.execute(() -> {
                if (!done) {
                    authenticated(o != null ? o : new RequestAuthenticator.Refused(AuthnFailure.JWKS_FETCH_FAILED,
                            String.valueOf(e)), judgedPath);
                }
            }));
        }
    }

    /** RequestAuthentication is over: a refusal answers; otherwise CUSTOM, policy, routing, faults, forwarding. */
    private void authenticated(RequestAuthenticator.Outcome outcome, String judgedPath) {
        switch (outcome) {
            case RequestAuthenticator.Refused r -> {
                unauthenticated(r, judgedPath);
                return;
            }
            case RequestAuthenticator.Authenticated a -> {
                RequestAuthenticator.apply(a, head);
                uri = head.uri();
                requestAuth = a.auth();
            }
            case RequestAuthenticator.Anonymous a -> {
            }
        }
        // CUSTOM next, as Istio orders it (after JWT authentication, before DENY and ALLOW): the
        // external authorizer, for the requests its policy's rules match.
        Optional<L7Authorization> custom = path.authorizer.customPolicy(state.policies(), tunnel.service(),
                authzRequest(judgedPath));
        if (custom.isPresent()) {
            BodySettings body = BodySettings.of(custom.get().getProvider());
            if (body != null && upgrade == null) {
                holdBody(custom.get(), body, judgedPath);
            } else {
                askAuthorizer(custom.get(), judgedPath, null);
            }
            return;
        }
        authorized(judgedPath);
    }

    private L7Authorizer.Request authzRequest(String judgedPath) {
        return new L7Authorizer.Request(tunnel.peer(), tunnel.source().getAddress(), tunnel.target().getAddress(),
                tunnel.target().getPort(), new L7Authorizer.Http(method, judgedPath,
                        head.headers().get(HttpHeaderNames.HOST), head.headers()), requestAuth);
    }

    /**
     * includeRequestBodyInCheck, as Envoy's with_request_body: the body is read and held (its parts
     * stay in {@link #unsent}, to be forwarded unchanged) until it ends or is longer than the
     * provider's maxRequestBytes, then the authorizer is asked with its first maxRequestBytes. A
     * longer body is refused with 413 (at once when its Content-Length says so) unless the
     * provider takes a partial body. Bounded: the waypoint's budget of held bodies (503 beyond),
     * and the body read timeout (408); reading stops once enough is held.
     */
    private void holdBody(L7Authorization policy, BodySettings settings, String judgedPath) {
        long declared = HttpUtil.getContentLength(head, -1L);
        if (declared > settings.maxBytes() && !settings.allowPartial()) {
            refuseBody(HeldBodies.Refusal.TOO_LARGE, "Content-Length " + declared + " is over maxRequestBytes "
                    + settings.maxBytes() + " of ext_authz provider " + policy.getProvider().getName());
            return;
        }
        heldBody = path.heldBodies.hold(settings);
        whenBodyHeld = () -> bodyHeld(policy, judgedPath);
        // What came with the head (a copy to walk: a refusal empties the queue).
        for (HttpContent part : List.copyOf(unsent)) {
            if (whenBodyHeld == null || !holdPart(part)) {
                break;
            }
        }
        if (done || whenBodyHeld == null) {
            return; // refused, or asked already
        }
        bodyTimer = loop.schedule(() -> {
            if (!done && whenBodyHeld != null) {
                refuseBody(HeldBodies.Refusal.TIMEOUT, "the body was not held within waypoint.ext-authz.body-read-timeout ("
                        + path.heldBodies.readTimeout().toMillis() + " ms) for ext_authz provider "
                        + policy.getProvider().getName());
            }
        }, path.heldBodies.readTimeout().toMillis(), TimeUnit.MILLISECONDS);
        if (expectContinue && !requestEnded) {
            continued = true; // the client waits for it before it sends the body the check needs
            downstream.informational(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE,
                    Unpooled.EMPTY_BUFFER));
        }
        updateReading();
    }

    /** One part of the body while it is held for the check; false when the request was refused. */
    private boolean holdPart(HttpContent part) {
        if (!heldBody.add(part.content())) {
            refuseBody(HeldBodies.Refusal.BUDGET, "the request bodies held for ext_authz checks reached"
                    + " waypoint.ext-authz.max-buffered-body-bytes");
            return false;
        }
        if (heldBody.enough(requestEnded)) {
            Runnable then = whenBodyHeld;
            whenBodyHeld = null;
            then.run();
        }
        return true;
    }

    /** Enough of the body is held: a body over the limit is refused unless partial is allowed; else the authorizer is asked. */
    private void bodyHeld(L7Authorization policy, String judgedPath) {
        cancel(bodyTimer);
        if (heldBody.over() && !heldBody.settings().allowPartial()) {
            refuseBody(HeldBodies.Refusal.TOO_LARGE, "the body is longer than maxRequestBytes "
                    + heldBody.settings().maxBytes() + " of ext_authz provider " + policy.getProvider().getName());
            return;
        }
        updateReading(); // no more until the answer
        askAuthorizer(policy, judgedPath, heldBody.checkBody());
    }

    private void refuseBody(HeldBodies.Refusal r, String reason) {
        path.heldBodies.refused(r);
        local(r.status, r.body, "UAEX", reason);
    }

    private void releaseHeldBody() {
        whenBodyHeld = null;
        cancel(bodyTimer);
        if (heldBody != null) {
            heldBody.release();
        }
    }

    /** Off the event loop: the authorizer answers on its client's thread, and the exchange goes on on its own loop. */
    private void askAuthorizer(L7Authorization policy, String judgedPath, CheckBody body) {
        CheckInput in = new CheckInput(method, uri, head.headers().get(HttpHeaderNames.HOST), "http",
                downstream.http2() ? "HTTP/2" : "HTTP/1.1", head.headers(), tunnel.source(),
                tunnel.peer() == null ? "" : tunnel.peer().uri(), tunnel.target(), path.self.uri(), body);
        path.extAuthz.check(policy.getProvider(), in).whenComplete((outcome, failure) -> loop.execute(() ->
                checked(policy, outcome != null ? outcome
                        : new Outcome.Deny(403, List.of(), "", "ext_authz failed: " + failure), judgedPath)));
    }

    /** Event loop: the authorizer's answer. */
    private void checked(L7Authorization policy, Outcome outcome, String judgedPath) {
        if (done) {
            return;
        }
        switch (outcome) {
            case Outcome.Deny d -> {
                HttpHeaders extra = new DefaultHttpHeaders();
                d.headers().forEach(e -> extra.add(e.getKey(), e.getValue()));
                local(d.status(), d.body(), extra, "UAEX", "CUSTOM " + policy.getNamespace() + "/" + policy.getName()
                        + ": " + d.reason());
            }
            case Outcome.Allow a -> {
                HttpHeaders h = head.headers();
                a.upstreamRemovals().forEach(h::remove);
                for (Outcome.HeaderChange c : a.upstream()) {
                    if (c.append()) {
                        h.add(c.name(), c.value());
                    } else {
                        h.set(c.name(), c.value()); // the client's copies go
                    }
                }
                authorizerResponseHeaders = a.downstream();
                authorized(judgedPath);
            }
            case Outcome.Failure f -> local(403, RBAC_DENIED, "UAEX", f.reason()); // ExtAuthz settles these; never here
        }
    }

    /** CUSTOM allowed the request (or none applies): DENY and ALLOW, routing, faults, then forwarding. */
    private void authorized(String judgedPath) {
        RouteTable.Request match = RouteTable.Request.of(method, uri, head.headers());
        Service service = tunnel.service();
        L7Authorizer.Decision decision = path.authorizer.evaluate(state.policies(), service, authzRequest(judgedPath));
        if (!decision.allowed()) {
            local(403, RBAC_DENIED, "-", decision.reason());
            return;
        }

        int port = tunnel.target().getPort();
        if (service != null) {
            Optional<ServiceRoutes> table = state.routes(service).filter(t -> RouteTable.routesHttp(t, port));
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
        if (route != null && route.hasRedirect()) {
            String location = RouteRewrites.location(route.getRedirect(), uri, head.headers().get(HttpHeaderNames.HOST),
                    service != null ? service.getHostname() : tunnel.target().getAddress().getHostAddress(), port);
            redirect(route.getRedirect().getStatusCode(), location, "redirect of route " + route.getName());
            return;
        }
        if (route != null && route.hasRewrite() && !rewrite(route.getRewrite(), service)) {
            return;
        }
        retry = effectiveRetry();
        if (retry != null && upgrade == null) {
            retryBuffer = new RetryBuffer(path.limits.retryBufferBytes(), path.limits.bodyBudget());
            // What arrived while the request waited (for its JWT keys, its authorizer, or its body
            // held for the authorizer) is body too: a retry must send it again.
            for (HttpContent part : unsent) {
                if (!retryBuffer.hold(part)) {
                    retryBuffer = null;
                    notRetried = "the body outgrew the retry buffer (" + path.limits.retryBufferBytes()
                            + " bytes, or the waypoint's body budget)";
                    break;
                }
            }
        }
        if (route != null && route.hasFault()) {
            FaultInjection fault = route.getFault();
            if (fault.getAbortStatus() != 0 && chance(fault.getAbortPercent())) {
                local(fault.getAbortStatus(), "fault filter abort", "FI", "fault injection abort");
                return;
            }
            if (fault.getDelayMs() > 0 && chance(fault.getDelayPercent())) {
                startMirrors();
                loop.schedule(this::forward, fault.getDelayMs(), TimeUnit.MILLISECONDS);
                return;
            }
        }
        startMirrors();
        forward();
    }

    /** A part of the request's body (the last one a {@code LastHttpContent}); ownership passes. */
    void requestContent(HttpContent part) {
        if (part instanceof LastHttpContent) {
            requestEnded = true;
        }
        if (done) {
            part.release();
            return;
        }
        lastActivity = System.nanoTime();
        requestBytes += part.content().readableBytes();
        if (retryBuffer != null && !retryBuffer.hold(part)) {
            retryBuffer = null;
            notRetried = "the body outgrew the retry buffer (" + path.limits.retryBufferBytes()
                    + " bytes, or the waypoint's body budget)";
        }
        for (MirrorCopy m : mirrors) {
            m.body(part); // before the part goes on (and is released)
        }
        if (upgrade == null && attempt != null && attempt.ready) {
            attempt.bodySent |= part.content().isReadable();
            attempt.call.write(part);
        } else {
            unsent.add(part);
            if (whenBodyHeld != null && !holdPart(part)) {
                return; // refused
            }
        }
        if (requestEnded) {
            sendMirrors();
            if (forwarding) {
                armRouteTimer();
            }
            if (attempt != null) {
                // From the request's end, whether or not the attempt is connected yet.
                attempt.armPerTry();
                if (attempt.ready) {
                    attempt.call.flush();
                }
            }
        }
        updateReading();
    }

    /** The client's read is over: what it brought may go out. */
    void requestReadComplete() {
        if (attempt != null && attempt.ready && !done) {
            attempt.call.flush();
        }
    }

    /** Whether more of the request's body is welcome now. */
    private boolean wantsRequestBody() {
        return !done && !requestEnded && upgrade == null && (whenBodyHeld != null
                || (attempt != null && attempt.ready && attempt.call.isWritable()));
    }

    private void updateReading() {
        downstream.readRequest(wantsRequestBody());
    }

    /** The client can take more of the response (or less). */
    void downstreamWritabilityChanged() {
        if (attempt != null && attempt.ready && committed && !done) {
            attempt.call.readResponse(downstream.isWritable());
        }
    }

    // ------------------------------------------------------------------ forwarding

    private void forward() {
        if (done) {
            return;
        }
        forwarding = true;
        int port = tunnel.target().getPort();
        if (route != null) {
            mutate(head.headers(), route.getRequestHeaderMutationsList());
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
            upstreamHttp2 = UpstreamProtocol.http2(WaypointState.appProtocol(backendService, backendPort),
                    downstream.http2());
        } else if (tunnel.service() != null) {
            backendService = tunnel.service();
            endpoints = state.endpoints(backendService, port);
            upstreamHttp2 = UpstreamProtocol.http2(WaypointState.appProtocol(backendService, port), downstream.http2());
        } else {
            Workload w = tunnel.workload();
            endpoints = List.of(new Endpoint(w, tunnel.target().getAddress(), port));
            upstreamHttp2 = downstream.http2();
        }
        if (endpoints.isEmpty()) {
            local(503, "no healthy upstream", "UH", "no healthy endpoint of "
                    + (backendService == null ? "?" : WaypointState.key(backendService)));
            return;
        }
        upstreamHead = upstreamHead();
        sendMirrors();
        if (expectContinue && !requestEnded && !continued) {
            // As Envoy: the waypoint says 100 itself (once policy let the request through) and
            // does not pass the expectation on.
            downstream.informational(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE,
                    Unpooled.EMPTY_BUFFER));
        }
        if (requestEnded) {
            armRouteTimer();
        }
        attempt();
    }

    /** The route's mirrors take their copies from here on (each by its share, within the waypoint's bound). */
    private void startMirrors() {
        if (route != null && route.getMirrorsCount() > 0 && upgrade == null) {
            mirrors = MirrorCopy.of(path, route.getMirrorsList(), loop, route.getTimeoutMs());
        }
    }

    /** Once the request is whole and forwarded, its copies go, as it was forwarded; fire and forget. */
    private void sendMirrors() {
        if (mirrors.isEmpty() || !requestEnded || upstreamHead == null) {
            return;
        }
        List<MirrorCopy> ready = mirrors;
        mirrors = List.of();
        for (MirrorCopy m : ready) {
            m.send(upstreamHead, state, downstream.http2());
        }
    }

    /** The head as the endpoint gets it: hop-by-hop headers out, the body's framing for the upstream's HTTP. */
    private HttpRequest upstreamHead() {
        HttpHeaders h = head.headers();
        boolean teTrailers = h.containsValue(HttpHeaderNames.TE, "trailers", true);
        boolean chunked = HttpUtil.isTransferEncodingChunked(head);
        stripHopByHop(h);
        if (expectContinue) {
            h.remove(HttpHeaderNames.EXPECT);
        }
        if (upgrade != null) {
            WebSocketUpgrade.asHttp1Request(h, upgrade);
        } else if (chunked) {
            h.remove(HttpHeaderNames.CONTENT_LENGTH); // never both: one framing, ours
            if (!upstreamHttp2) {
                h.set(HttpHeaderNames.TRANSFER_ENCODING, "chunked");
            }
        }
        if (upstreamHttp2 && teTrailers) {
            h.set(HttpHeaderNames.TE, "trailers"); // the one TE HTTP/2 allows; gRPC needs it
        }
        return new DefaultHttpRequest(HttpVersion.HTTP_1_1, head.method(), uri, h);
    }

    private void attempt() {
        if (done) {
            return;
        }
        String serviceKey = backendService == null ? tunnel.workload().getUid() : WaypointState.key(backendService);
        Endpoint ep = path.balancer.pick(serviceKey, endpoints, failedEndpoints);
        lastEndpoint = ep;
        attempts++;
        Attempt a = new Attempt(ep);
        attempt = a;
        a.call = path.upstream.open(ep, identity(ep.workload()), loop, upstreamHttp2, a);
        if (requestEnded) {
            a.armPerTry();
        }
    }

    /** One try at one endpoint: the events of its call, heard only while it is the current one. */
    private final class Attempt implements UpstreamCall.Listener {
        final Endpoint endpoint;
        final LoadBalancer.Stats stats;
        UpstreamCall call;
        boolean ready;
        /** Some of the request's body was written to this endpoint (a non-idempotent request is then not sent again). */
        boolean bodySent;
        private boolean ended;
        private ScheduledFuture<?> perTry;

        Attempt(Endpoint endpoint) {
            this.endpoint = endpoint;
            this.stats = path.balancer.stats(endpoint.uid());
            stats.begin();
        }

        private boolean current() {
            return attempt == this && !done;
        }

        /** Its part in the balancer's counts ends, and its per-try timer. */
        void end() {
            if (!ended) {
                ended = true;
                stats.end();
                cancel(perTry);
            }
        }

        void armPerTry() {
            RetryPolicy retry = retryPolicy();
            if (perTry != null || ended || retry == null || retry.getPerTryTimeoutMs() <= 0) {
                return;
            }
            perTry = loop.schedule(() -> {
                if (current() && !committed) {
                    call.abort();
                    Exchange.this.failed(this, new UpstreamFailure(UpstreamFailure.Kind.TIMEOUT,
                            "per-try timeout " + retry.getPerTryTimeoutMs() + " ms"));
                }
            }, retry.getPerTryTimeoutMs(), TimeUnit.MILLISECONDS);
        }

        @Override
        public void ready() {
            if (!current()) {
                call.abort();
                return;
            }
            ready = true;
            call.write(upstreamHead);
            if (upgrade == null) {
                if (attempts > 1 && retryBuffer != null) {
                    // A retry: the whole body so far, from the copy (what waits in unsent is in it too).
                    releaseUnsent();
                    bodySent = retryBuffer.bytes() > 0;
                    retryBuffer.replay(call::write);
                } else {
                    for (HttpContent part; (part = unsent.poll()) != null;) {
                        bodySent |= part.content().isReadable();
                        call.write(part);
                    }
                }
            }
            releaseHeldBody(); // what was held for the check has gone on
            call.flush();
            updateReading();
        }

        @Override
        public void response(HttpObject part) {
            if (!current()) {
                ReferenceCountUtil.release(part);
                return;
            }
            lastActivity = System.nanoTime();
            if (committed) {
                responseContent(this, part);
            } else {
                responseHead(this, part);
            }
        }

        @Override
        public void readComplete() {
            if (current() && committed) {
                downstream.flush();
            }
        }

        @Override
        public void writabilityChanged() {
            if (current()) {
                updateReading();
            }
        }

        @Override
        public void failed(UpstreamFailure failure) {
            if (current()) {
                Exchange.this.failed(this, failure);
            }
        }
    }

    private RetryPolicy retryPolicy() {
        return retry;
    }

    /**
     * As Istio's pilot builds it: a route without a retry policy (or no route) gets Istio's
     * default; one with attempts 0 none; one that lists no conditions Istio's default conditions.
     */
    private RetryPolicy effectiveRetry() {
        if (route == null || !route.hasRetry()) {
            return ISTIO_DEFAULT_RETRY;
        }
        RetryPolicy r = route.getRetry();
        if (r.getAttempts() <= 0) {
            return null;
        }
        return r.getRetryOnCount() > 0 ? r : r.toBuilder().addAllRetryOn(ISTIO_RETRY_ON).build();
    }

    /** The backend service's outlier detection (a DestinationRule's), or null: nothing is ejected. */
    private dev.ambient.proto.workload.OutlierDetection outliers() {
        return backendService != null && backendService.hasOutlierDetection() ? backendService.getOutlierDetection()
                : null;
    }

    // ------------------------------------------------------------------ the response

    private void responseHead(Attempt a, HttpObject part) {
        if (!(part instanceof HttpResponse response)) {
            ReferenceCountUtil.release(part); // a body before a head cannot happen
            return;
        }
        int code = response.status().code();
        if (code < 200 && code != 101) {
            ReferenceCountUtil.release(part); // interim answers: the waypoint said 100 itself
            return;
        }
        if (code == 101 && upgrade == null) {
            ReferenceCountUtil.release(part);
            a.call.abort();
            failed(a, new UpstreamFailure(UpstreamFailure.Kind.PROTOCOL, "101 to a request that asked for no upgrade"));
            return;
        }
        a.end();
        path.balancer.outcome(a.endpoint, endpoints, outliers(), code, "status " + code);
        if (code == 101) {
            upgraded(a, response);
            return;
        }
        if (retriableStatus(code) && retry("status " + code, a, true)) {
            ReferenceCountUtil.release(part);
            return;
        }
        String grpcFailure = grpc ? retriableGrpcStatus(Grpc.status(response.headers())) : null;
        // gRPC defines UNAVAILABLE as not acted on (safe to retry), whatever the method.
        if (grpcFailure != null && retry("grpc-status " + grpcFailure, a, !grpcFailure.equals("unavailable"))) {
            ReferenceCountUtil.release(part);
            return;
        }
        commit();
        status = code;
        authorizerResponseHeaders.forEach(e -> response.headers().add(e.getKey(), e.getValue()));
        if (route != null) {
            mutate(response.headers(), route.getResponseHeaderMutationsList());
        }
        response.headers().set("traceparent", traceparent);
        flags = attempts > 1 && code >= 500 ? "URX" : "-";
        if (grpc) {
            grpcStatus = Grpc.status(response.headers()); // trailers-only, or null until the trailers
        }
        if (response instanceof FullHttpResponse full) {
            responseBytes += full.content().readableBytes();
            if (grpc && grpcStatus == null) {
                grpcStatus = Grpc.status(full.trailingHeaders());
            }
            downstream.head(full);
            finish(null);
            return;
        }
        downstream.head(response);
        if (!downstream.isWritable()) {
            a.call.readResponse(false);
        }
    }

    private void responseContent(Attempt a, HttpObject part) {
        if (!(part instanceof HttpContent content)) {
            ReferenceCountUtil.release(part);
            return;
        }
        responseBytes += content.content().readableBytes();
        if (content instanceof LastHttpContent last) {
            if (grpc && grpcStatus == null) {
                grpcStatus = Grpc.status(last.trailingHeaders());
            }
            downstream.content(last);
            finish(null);
            return;
        }
        downstream.content(content);
        if (!downstream.isWritable()) {
            a.call.readResponse(false);
        }
    }

    /** From here on the response is the client's: no retry, no local answer; the copy of the body goes. */
    private void commit() {
        committed = true;
        releaseRetryBuffer();
    }

    /** The endpoint accepted the upgrade: the exchange becomes a byte tunnel once the client has the 101. */
    private void upgraded(Attempt a, HttpResponse response) {
        commit();
        status = 101;
        cancel(routeTimer);
        cancel(idleTimer);
        if (route != null) {
            mutate(response.headers(), route.getResponseHeaderMutationsList());
        }
        response.headers().set("traceparent", traceparent);
        // The switch happens after the read that brought the 101 is through (what came with it
        // is held for the splice), never inside the codec that is being removed.
        downstream.upgrade(response, client -> loop.execute(() -> {
            if (done) {
                client.close();
                a.call.abort();
                return;
            }
            Channel endpointSide = a.call.takeOverAsTunnel();
            // What the client sent before it had the 101 (an HTTP/2 client may), ahead of the rest.
            for (HttpContent part; (part = unsent.poll()) != null;) {
                if (part.content().isReadable()) {
                    endpointSide.write(part.content().retain());
                }
                part.release();
            }
            endpointSide.flush();
            AtomicLong fromClient = new AtomicLong();
            AtomicLong fromEndpoint = new AtomicLong();
            // Envoy's stream idle timeout holds for an upgraded stream too: a tunnel nobody uses ends.
            java.util.function.BooleanSupplier idledOut = TcpSplice.join(client, endpointSide, fromClient,
                    fromEndpoint, path.limits.streamIdleTimeout());
            client.closeFuture().addListener(f -> loop.execute(() -> {
                requestBytes += fromClient.get();
                responseBytes += fromEndpoint.get();
                finish("upgraded to " + upgrade + ", tunnel closed" + (idledOut.getAsBoolean()
                        ? " after the stream idle timeout (" + path.limits.streamIdleTimeout().toMillis() + " ms)" : ""));
            }));
        }));
    }

    private void failed(Attempt a, UpstreamFailure f) {
        a.end();
        path.balancer.outcome(a.endpoint, endpoints, outliers(), 0, f.getMessage());
        if (committed) {
            flags = switch (f.kind()) {
                case TIMEOUT -> "UT";
                case PROTOCOL -> "UPE";
                default -> "UC";
            };
            downstream.abort();
            finish("response cut short: " + f.getMessage());
            return;
        }
        // Connect failures and refused streams never reached the application; the rest may have.
        boolean reached = f.kind() != UpstreamFailure.Kind.CONNECT && f.kind() != UpstreamFailure.Kind.REFUSED;
        if (retriableFailure(f.kind()) && retry(f.getMessage(), a, reached)) {
            return;
        }
        switch (f.kind()) {
            case CONNECT -> local(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    + "connection failure", "UF", f.getMessage());
            case RESET -> local(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    + "connection termination", "UC", f.getMessage());
            case REFUSED -> local(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    + "remote refused stream reset", "UC", f.getMessage());
            case PROTOCOL -> local(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    + "protocol error", "UPE", f.getMessage());
            case TIMEOUT -> local(504, "upstream request timeout", "UT", f.getMessage());
        }
    }

    // ------------------------------------------------------------------ retries

    /**
     * Schedules another attempt if the policy, the attempts left, the held body and the budget allow
     * it, and, when the application may have acted on the request ({@code reached}), if sending it
     * again is safe: never for a non-idempotent request whose body the endpoint already got.
     */
    private boolean retry(String why, Attempt failedAttempt, boolean reached) {
        RetryPolicy retry = retryPolicy();
        if (retry == null || attempts > retry.getAttempts() || committed || done) {
            return false;
        }
        if (retryBuffer == null) {
            return false; // the body went past what is held: it cannot be sent again (notRetried says why)
        }
        if (reached && failedAttempt.bodySent && !IDEMPOTENT.contains(method)) {
            notRetried = method + " is not idempotent and its body reached the endpoint";
            return false;
        }
        int budget = retry.getBudgetPercent() > 0 ? retry.getBudgetPercent() : path.defaultRetryBudgetPercent;
        if (!retrying) {
            if (!path.retryBudget.tryRetry(budget)) {
                notRetried = "the retry budget is spent";
                return false; // budget exhausted: the failure is answered as it is
            }
            retrying = true;
        }
        failedEndpoints.add(failedAttempt.endpoint.uid());
        failedAttempt.call.abort();
        attempt = null;
        releaseUnsent(); // all of it is in the retry buffer
        updateReading();
        long base = retry.getBackoffBaseMs() > 0 ? retry.getBackoffBaseMs() : 25;
        long cap = Math.min(base << Math.min(attempts - 1, 10), 10 * base);
        long delay = ThreadLocalRandom.current().nextLong(cap + 1);
        loop.schedule(this::attempt, delay, TimeUnit.MILLISECONDS);
        return true;
    }

    private boolean retriableStatus(int status) {
        RetryPolicy retry = retryPolicy();
        if (retry == null) {
            return false;
        }
        List<String> on = retry.getRetryOnList();
        return on.contains(Integer.toString(status)) || (status >= 500 && on.contains("5xx"))
                || ((status == 502 || status == 503 || status == 504) && on.contains("gateway-error"));
    }

    private boolean retriableFailure(UpstreamFailure.Kind kind) {
        RetryPolicy retry = retryPolicy();
        if (retry == null) {
            return false;
        }
        List<String> on = retry.getRetryOnList();
        return switch (kind) {
            // Never reached the application: always safe to retry (Istio lists both in every policy it makes).
            case CONNECT, REFUSED -> true;
            // Envoy's "reset" covers no response at all: disconnect, reset, read (per-try) timeout.
            case RESET, TIMEOUT -> on.contains("reset") || on.contains("5xx") || on.contains("gateway-error");
            case PROTOCOL -> on.contains("5xx") || on.contains("gateway-error");
        };
    }

    /** The retry_on name of a gRPC status the policy retries (Envoy's x-envoy-retry-grpc-on names), else null. */
    private String retriableGrpcStatus(String status) {
        String name = status == null ? null : switch (status) {
            case "1" -> "cancelled";
            case "4" -> "deadline-exceeded";
            case "8" -> "resource-exhausted";
            case "13" -> "internal";
            case "14" -> "unavailable";
            default -> null;
        };
        return name != null && retry != null && retry.getRetryOnList().contains(name) ? name : null;
    }

    // ------------------------------------------------------------------ timeouts

    /** The route's timeout, from the request's end to the response's end (Envoy's route timeout). */
    private void armRouteTimer() {
        if (routeTimer != null || route == null || route.getTimeoutMs() <= 0 || done) {
            return;
        }
        routeTimer = loop.schedule(() -> {
            if (done) {
                return;
            }
            if (attempt != null) {
                attempt.call.abort();
            }
            // A response already under way is cut: the client sees a reset, never a second answer.
            local(504, "upstream request timeout", "UT", "route timeout " + route.getTimeoutMs() + " ms");
        }, route.getTimeoutMs(), TimeUnit.MILLISECONDS);
    }

    /** No byte either way for stream-idle-timeout: 408 before the response began, a reset after. */
    private void armIdleTimer() {
        Duration idle = path.limits.streamIdleTimeout();
        if (idle.isZero() || done) {
            return;
        }
        long wait = idle.toNanos() - (System.nanoTime() - lastActivity);
        if (wait > 0) {
            idleTimer = loop.schedule(this::armIdleTimer, wait, TimeUnit.NANOSECONDS);
            return;
        }
        if (attempt != null) {
            attempt.call.abort();
        }
        local(408, "stream timeout", "SI", "stream idle timeout " + idle.toMillis() + " ms");
    }

    // ------------------------------------------------------------------ answers of our own, and the end

    /**
     * RequestAuthentication's refusal, as Envoy's jwt_authn answers: its status text as the body and
     * a Bearer challenge naming the request's URL (without its query, which may hold the token).
     */
    private void unauthenticated(RequestAuthenticator.Refused r, String judgedPath) {
        String host = head.headers().get(HttpHeaderNames.HOST, "").replaceAll("[\"\\\\]", "");
        HttpHeaders challenge = new DefaultHttpHeaders().set(HttpHeaderNames.WWW_AUTHENTICATE,
                "Bearer realm=\"http://" + host + judgedPath + "\", error=\"invalid_token\"");
        local(r.failure().status(), r.failure().body(), challenge, "-",
                "JWT refused: " + r.failure().body() + " (" + r.reason() + ")");
    }

    /** Answers from the waypoint itself (policy, routing, faults, upstream failures, timeouts); a gRPC call in gRPC's form. */
    private void local(int code, String body, String flags, String reason) {
        local(code, body, null, flags, reason);
    }

    /** A local answer with headers of its own (an authorizer's deny), which may set its content type. */
    private void local(int code, String body, HttpHeaders extra, String flags, String reason) {
        if (done) {
            return;
        }
        this.flags = flags;
        if (committed) {
            downstream.abort();
            finish(reason);
            return;
        }
        if (attempt != null) {
            attempt.call.abort();
        }
        commit();
        FullHttpResponse r;
        if (grpc) {
            r = Grpc.localReply(code, body);
            grpcStatus = r.headers().get(Grpc.STATUS);
        } else {
            r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(code),
                    Unpooled.copiedBuffer(body, StandardCharsets.UTF_8));
            r.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain");
            r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, r.content().readableBytes());
        }
        if (extra != null) {
            for (Map.Entry<String, String> e : extra) {
                r.headers().remove(e.getKey());
            }
            r.headers().add(extra);
            r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, r.content().readableBytes());
        }
        status = r.status().code();
        r.headers().set("traceparent", traceparent);
        responseBytes = r.content().readableBytes();
        downstream.head(r);
        finish(reason);
    }

    /** A redirect: UNESCAPE_AND_REDIRECT's 307 to the unescaped path (as Envoy), or a route's RequestRedirect. */
    private void redirect(int code, String location, String reason) {
        commit();
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(code),
                Unpooled.EMPTY_BUFFER);
        r.headers().set(HttpHeaderNames.LOCATION, location);
        r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, 0);
        r.headers().set("traceparent", traceparent);
        if (route != null) {
            mutate(r.headers(), route.getResponseHeaderMutationsList());
        }
        status = code;
        downstream.head(r);
        finish(reason);
    }

    /**
     * The route's URLRewrite: the target and Host the application will receive, normalized as the
     * client's were, and judged again by the DENY policies (the request as sent was judged by all
     * policies already). False when it was answered instead.
     */
    private boolean rewrite(UrlRewrite rewrite, Service service) {
        String target = RouteRewrites.rewrittenTarget(rewrite, uri);
        String host = rewrite.getHostname().isEmpty() ? head.headers().get(HttpHeaderNames.HOST) : rewrite.getHostname();
        if (!(RequestTarget.normalize(target, path.limits.paths()) instanceof RequestTarget.Forward f)) {
            // svc-xds lets only normalized paths through; a target that would not stay as it is is refused.
            local(500, "route rewrite failed", "DR", "route " + route.getName() + " rewrote to a bad target " + target);
            return false;
        }
        L7Authorizer.Decision again = path.authorizer.evaluateDenies(state.policies(), service,
                new L7Authorizer.Request(tunnel.peer(), tunnel.source().getAddress(), tunnel.target().getAddress(),
                        tunnel.target().getPort(), new L7Authorizer.Http(method, f.path(), host, head.headers()),
                        requestAuth));
        if (!again.allowed()) {
            local(403, RBAC_DENIED, "-", again.reason() + " (as rewritten by route " + route.getName() + " to "
                    + f.target() + ")");
            return false;
        }
        uri = f.target();
        head.setUri(uri);
        if (!rewrite.getHostname().isEmpty()) {
            head.headers().set(HttpHeaderNames.HOST, rewrite.getHostname());
        }
        return true;
    }

    /** The client went away: stop everything and drop what is pending. */
    void abandon() {
        if (!done) {
            if (!committed) {
                status = 499;
            }
            flags = "DC";
            if (attempt != null) {
                attempt.call.abort();
            }
            finish("client closed the stream");
        }
    }

    private void finish(String reason) {
        if (done) {
            return;
        }
        done = true;
        for (MirrorCopy m : mirrors) {
            m.abandon();
        }
        mirrors = List.of();
        cancel(routeTimer);
        cancel(idleTimer);
        releaseHeldBody();
        releaseRetryBuffer();
        releaseUnsent();
        if (attempt != null) {
            attempt.end();
            attempt.call.finished();
        }
        if (retrying) {
            path.retryBudget.retryEnded();
        }
        path.retryBudget.requestEnded();
        downstream.ended(requestEnded);

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
                Integer.toString(status), grpc ? "grpc" : "http", grpc && grpcStatus != null ? grpcStatus : "",
                flags), millis, requestBytes, responseBytes);
        if (reason == null && notRetried != null && attempts == 1 && (status >= 500 || flags.startsWith("U"))) {
            reason = "not retried: " + notRetried;
        }
        AccessLog.request(method, clientUri, uri.equals(clientUri) ? null : uri, downstream.protocol(), status, flags,
                requestBytes, responseBytes, millis, lastEndpoint == null ? "-" : lastEndpoint.describe(),
                tunnel.source().getAddress().getHostAddress() + ":" + tunnel.source().getPort(), peer,
                tunnel.describe(), route == null ? "-" : route.getName(), attempts, traceparent, reason);
    }

    private void releaseRetryBuffer() {
        if (retryBuffer != null) {
            retryBuffer.release();
            retryBuffer = null;
        }
    }

    private void releaseUnsent() {
        for (HttpContent part; (part = unsent.poll()) != null;) {
            part.release();
        }
    }

    // ------------------------------------------------------------------ helpers

    private SpiffeId identity(Workload w) {
        return identityOf(w, path.trustDomain);
    }

    /** The SPIFFE id an endpoint must prove: its workload's service account. */
    static SpiffeId identityOf(Workload w, String trustDomain) {
        String td = w.getTrustDomain().isEmpty() ? trustDomain : w.getTrustDomain();
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

    private static void cancel(ScheduledFuture<?> timer) {
        if (timer != null) {
            timer.cancel(false);
        }
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
        h.remove("x-http2-path");
        h.remove("x-http2-stream-weight");
        h.remove("x-http2-stream-dependency-id");
    }
}
