package dev.ambient.waypoint.http;

import dev.ambient.proto.l7.Mirror;
import dev.ambient.proto.workload.Service;
import dev.ambient.waypoint.proxy.UpstreamCall;
import dev.ambient.waypoint.proxy.UpstreamFailure;
import dev.ambient.waypoint.state.WaypointState;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * One RequestMirror copy of a request, fire and forget, as Envoy's shadow: the body is copied as it
 * passes (bounded as a retry's copy is, {@link RetryBuffer}); once the request has arrived whole,
 * the copy goes to an endpoint of the mirror's service through HBONE with the waypoint's identity
 * (as a backend of the route would), with {@code -shadow} added to its Host, and its response is
 * read and thrown away. Nothing here ever touches the primary exchange: no wait, no failure, no
 * backpressure on it. Event loop only (the primary's).
 */
final class MirrorCopy implements UpstreamCall.Listener {

    private static final Logger LOG = Logger.getLogger(MirrorCopy.class);

    private final DataPath path;
    private final Mirror mirror;
    private final EventLoop loop;
    private final RetryBuffer body;
    private final long routeTimeoutMs;
    private HttpRequest head;
    private UpstreamCall call;
    private ScheduledFuture<?> timer;
    private boolean over;

    private MirrorCopy(DataPath path, Mirror mirror, EventLoop loop, long routeTimeoutMs) {
        this.path = path;
        this.mirror = mirror;
        this.loop = loop;
        this.routeTimeoutMs = routeTimeoutMs;
        this.body = new RetryBuffer(path.limits.retryBufferBytes(), path.limits.bodyBudget());
    }

    /** The copies a request's route asks for (each by its share), as far as the in-flight bound lets them be. */
    static List<MirrorCopy> of(DataPath path, List<Mirror> mirrors, EventLoop loop, long routeTimeoutMs) {
        List<MirrorCopy> out = null;
        for (Mirror m : mirrors) {
            if (m.getPercent() < 100 && java.util.concurrent.ThreadLocalRandom.current().nextDouble(100) >= m.getPercent()) {
                continue;
            }
            if (!path.mirrors.tryBegin()) {
                continue;
            }
            if (out == null) {
                out = new java.util.ArrayList<>(mirrors.size());
            }
            out.add(new MirrorCopy(path, m, loop, routeTimeoutMs));
        }
        return out == null ? List.of() : out;
    }

    /** A part of the request's body passed by (the caller keeps it); a body too big for the copy drops it. */
    void body(HttpContent part) {
        if (!over && !body.hold(part)) {
            end(Mirrors.Outcome.DROPPED_BODY, "its body outgrew " + path.limits.retryBufferBytes()
                    + " bytes (or the waypoint's body budget)");
        }
    }

    /**
     * The request arrived whole and was forwarded with {@code sent} as its head: the copy goes out.
     * {@code state} is the configuration the request was routed with.
     */
    void send(HttpRequest sent, WaypointState state, boolean downstreamHttp2) {
        if (over) {
            return;
        }
        if (!body.complete()) {
            end(Mirrors.Outcome.DROPPED_INCOMPLETE, "the request never arrived whole");
            return;
        }
        Service service = state.serviceByKey(mirror.getService()).orElse(null);
        List<Endpoint> endpoints = service == null ? List.of() : state.endpoints(service, mirror.getPort());
        Endpoint ep = path.balancer.pick(mirror.getService(), endpoints, Set.of());
        if (ep == null) {
            end(Mirrors.Outcome.DROPPED_NO_ENDPOINT, "no endpoint of " + mirror.getService());
            return;
        }
        HttpHeaders h = sent.headers().copy();
        String host = h.get(HttpHeaderNames.HOST);
        if (host != null) {
            h.set(HttpHeaderNames.HOST, shadowHost(host));
        }
        // Held whole: one framing, the length.
        h.remove(HttpHeaderNames.TRANSFER_ENCODING);
        h.setInt(HttpHeaderNames.CONTENT_LENGTH, (int) body.bytes());
        head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, sent.method(), sent.uri(), h);
        long timeoutMs = path.mirrors.timeout.toMillis();
        if (routeTimeoutMs > 0) {
            timeoutMs = Math.min(timeoutMs, routeTimeoutMs);
        }
        timer = loop.schedule(() -> {
            if (!over) {
                call.abort();
                end(Mirrors.Outcome.FAILED, "no response within " + path.mirrors.timeout.toMillis() + " ms");
            }
        }, timeoutMs, TimeUnit.MILLISECONDS);
        boolean http2 = UpstreamProtocol.http2(WaypointState.appProtocol(service, mirror.getPort()), downstreamHttp2);
        call = path.upstream.open(ep, Exchange.identityOf(ep.workload(), path.trustDomain), loop, http2, this);
    }

    /** The primary exchange is over without the copy having been sent: given back. */
    void abandon() {
        if (!over && call == null) {
            end(Mirrors.Outcome.DROPPED_INCOMPLETE, "the request never arrived whole");
        }
    }

    /** Envoy's shadow Host: {@code -shadow} after the name, before any port. */
    static String shadowHost(String host) {
        int port = host.startsWith("[") ? host.indexOf("]:") + 1 : host.indexOf(':');
        if (port <= 0 || host.indexOf(':', port + 1) >= 0) {
            return host + "-shadow"; // no port (an IPv6 literal without brackets has several colons)
        }
        return host.substring(0, port) + "-shadow" + host.substring(port);
    }

    @Override
    public void ready() {
        if (over) {
            call.abort();
            return;
        }
        call.write(head);
        body.replay(call::write);
        body.release();
        call.flush();
    }

    @Override
    public void response(HttpObject part) {
        boolean last = part instanceof LastHttpContent;
        ReferenceCountUtil.release(part);
        if (last && !over) {
            call.finished();
            end(Mirrors.Outcome.SENT, null);
        }
    }

    @Override
    public void readComplete() {
    }

    @Override
    public void writabilityChanged() {
    }

    @Override
    public void failed(UpstreamFailure failure) {
        if (!over) {
            end(Mirrors.Outcome.FAILED, failure.getMessage());
        }
    }

    private void end(Mirrors.Outcome outcome, String why) {
        over = true;
        body.release();
        if (timer != null) {
            timer.cancel(false);
        }
        path.mirrors.ended(outcome);
        if (why != null) {
            LOG.debugf("mirror to %s: %s", mirror.getService(), why);
        }
    }
}
