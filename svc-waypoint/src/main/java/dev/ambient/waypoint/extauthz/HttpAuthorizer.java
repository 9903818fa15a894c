package dev.ambient.waypoint.extauthz;

import dev.ambient.proto.l7.ExtAuthzHttp;
import dev.ambient.proto.l7.ExtAuthzProvider;
import dev.ambient.waypoint.callout.CappedBody;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpRequest;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.codec.BodyCodec;
import io.vertx.core.net.ProxyOptions;
import io.vertx.core.net.ProxyType;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;

/**
 * envoyExtAuthzHttp, with vertx-web-client (to a mesh authorizer through the HBONE bridge, as a
 * SOCKS5 proxy): the request's method and path (after the provider's
 * pathPrefix), its Host, and the headers the provider selects (Authorization always, as Envoy)
 * go to the authorizer; with includeRequestBodyInCheck, the held body as the check's body (its
 * Content-Length) and {@code x-envoy-auth-partial-body}, as Envoy, else no body. 200 allows (headersToUpstreamOnAllow from its response go
 * into the forwarded request, replacing the client's; headersToDownstreamOnAllow into the
 * response); 5xx is a failure (Envoy's); any other status denies with that status, the
 * authorizer's headers (headersToDownstreamOnDeny, or all) and its body, read up to a bound.
 */
final class HttpAuthorizer {

    private final WebClient client;
    private final int maxBodyBytes;
    /** Vert.x tunnels plaintext HTTP only through SOCKS5 (through an HTTP proxy it forwards instead). */
    private final ProxyOptions viaBridge;

    HttpAuthorizer(WebClient client, int maxBodyBytes, InetSocketAddress bridge) {
        this.client = client;
        this.maxBodyBytes = maxBodyBytes;
        this.viaBridge = new ProxyOptions().setType(ProxyType.SOCKS5).setHost(bridge.getAddress().getHostAddress())
                .setPort(bridge.getPort());
    }

    /** Completes (on a Vert.x thread) with Allow, Deny or Failure; never exceptionally. */
    CompletableFuture<Outcome> check(ExtAuthzProvider p, Target target, CheckInput in) {
        ExtAuthzHttp http = p.getHttp();
        CompletableFuture<Outcome> result = new CompletableFuture<>();
        HttpMethod method = HttpMethod.valueOf(in.method());
        HttpRequest<Buffer> req = client.request(method, target.port(), target.host(), http.getPathPrefix()
                + in.pathAndQuery());
        // Vert.x's request timeout is an idle timeout; the whole check's bound is ExtAuthz's timer.
        req.timeout(Math.max(1, p.getTimeoutMs()));
        if (target.hbone()) {
            req.proxy(viaBridge);
        }
        MultiMap h = req.headers();
        in.headers().forEach(e -> {
            String name = e.getKey().toLowerCase(Locale.ROOT);
            if ((name.equals("authorization") || HeaderSelection.selects(http.getIncludeRequestHeadersInCheckList(), name))
                    && HeaderSelection.passable(name)) {
                h.add(name, e.getValue());
            }
        });
        http.getIncludeAdditionalHeadersInCheckMap().forEach(h::set);
        if (in.host() != null) {
            h.set(HttpHeaderNames.HOST.toString(), in.host());
        }
        if (in.body() != null) {
            h.set(CheckBody.PARTIAL_HEADER, Boolean.toString(in.body().partial()));
        }
        CappedBody body = new CappedBody(maxBodyBytes);
        HttpRequest<Void> call = req.as(BodyCodec.pipe(body, false));
        (in.body() == null ? call.send() : call.sendBuffer(Buffer.buffer(in.body().bytes()))).onComplete(ar -> {
            if (ar.failed()) {
                Throwable t = ar.cause();
                result.complete(new Outcome.Failure(t instanceof TimeoutException || String.valueOf(t.getMessage())
                        .contains("timeout") ? Outcome.Kind.TIMEOUT : Outcome.Kind.ERROR,
                        "HTTP authorizer " + target + ": " + t));
                return;
            }
            result.complete(outcome(http, ar.result(), body, target));
        });
        return result;
    }

    private static Outcome outcome(ExtAuthzHttp http, HttpResponse<Void> r, CappedBody body, Target target) {
        int status = r.statusCode();
        if (body.overflowed()) {
            return new Outcome.Failure(Outcome.Kind.ERROR, "HTTP authorizer " + target + ": its body is over the bound");
        }
        if (status >= 500) {
            return new Outcome.Failure(Outcome.Kind.ERROR, "HTTP authorizer " + target + " answered " + status);
        }
        if (status == 200) {
            List<Outcome.HeaderChange> upstream = new ArrayList<>();
            List<Map.Entry<String, String>> downstream = new ArrayList<>();
            for (Map.Entry<String, String> e : r.headers()) {
                String name = e.getKey().toLowerCase(Locale.ROOT);
                if (!HeaderSelection.passable(name, e.getValue())) {
                    continue;
                }
                if (HeaderSelection.selects(http.getHeadersToUpstreamOnAllowList(), name)) {
                    upstream.add(new Outcome.HeaderChange(name, e.getValue(), false));
                }
                if (HeaderSelection.selects(http.getHeadersToDownstreamOnAllowList(), name)) {
                    downstream.add(Map.entry(name, e.getValue()));
                }
            }
            return new Outcome.Allow(List.copyOf(upstream), List.of(), List.copyOf(downstream),
                    "allowed by HTTP authorizer " + target);
        }
        List<Map.Entry<String, String>> headers = new ArrayList<>();
        for (Map.Entry<String, String> e : r.headers()) {
            String name = e.getKey().toLowerCase(Locale.ROOT);
            if (HeaderSelection.passable(name, e.getValue()) && (http.getHeadersToDownstreamOnDenyCount() == 0
                    || HeaderSelection.selects(http.getHeadersToDownstreamOnDenyList(), name))) {
                headers.add(Map.entry(name, e.getValue()));
            }
        }
        return new Outcome.Deny(status < 200 ? 403 : status, List.copyOf(headers), body.text(),
                "denied by HTTP authorizer " + target + " (" + status + ")");
    }
}
