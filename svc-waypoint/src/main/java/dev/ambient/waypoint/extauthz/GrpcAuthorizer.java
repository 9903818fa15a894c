package dev.ambient.waypoint.extauthz;

import com.google.protobuf.ByteString;
import dev.ambient.proto.extauthz.Address;
import dev.ambient.proto.extauthz.AttributeContext;
import dev.ambient.proto.extauthz.AuthorizationGrpc;
import dev.ambient.proto.extauthz.CheckRequest;
import dev.ambient.proto.extauthz.CheckResponse;
import dev.ambient.proto.extauthz.HeaderValueOption;
import dev.ambient.proto.extauthz.SocketAddress;
import dev.ambient.proto.l7.ExtAuthzProvider;
import io.grpc.HttpConnectProxiedSocketAddress;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * envoyExtAuthzGrpc: {@code envoy.service.auth.v3.Authorization/Check} over plaintext HTTP/2 with
 * grpc-java (the stack quarkus-grpc is built on), to a mesh authorizer inside an HBONE stream
 * (an HTTP CONNECT to {@link MeshAuthorizerBridge}), one channel per authorizer address (a few
 * kept, the least recently used closed). The request's headers (pseudo-headers included, as
 * Envoy) and peers go in the CheckRequest, with includeRequestBodyInCheck also the held body
 * (HttpRequest.body as text, or raw_body with packAsBytes; a body that is not UTF-8 text without
 * packAsBytes fails the check rather than be sent altered), its size and
 * {@code x-envoy-auth-partial-body}; status OK allows with the OkHttpResponse's header
 * changes, anything else denies with the DeniedHttpResponse's status (403 when unset), headers
 * and body. Deadline = the provider's timeout.
 */
final class GrpcAuthorizer implements AutoCloseable {

    private static final int MAX_CHANNELS = 32;

    private final Map<Target, ManagedChannel> channels = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Target, ManagedChannel> eldest) {
            if (size() > MAX_CHANNELS) {
                eldest.getValue().shutdown();
                return true;
            }
            return false;
        }
    };
    private final int maxMessageBytes;
    private final InetSocketAddress bridge;

    GrpcAuthorizer(int maxMessageBytes, InetSocketAddress bridge) {
        this.maxMessageBytes = maxMessageBytes;
        this.bridge = bridge;
    }

    private synchronized ManagedChannel channel(Target t) {
        return channels.computeIfAbsent(t, k -> {
            NettyChannelBuilder b = NettyChannelBuilder.forAddress(k.host(), k.port()).usePlaintext()
                    .maxInboundMessageSize(maxMessageBytes);
            if (k.hbone()) {
                // HTTP CONNECT to the bridge, which carries the connection in an HBONE stream.
                b.proxyDetector(address -> HttpConnectProxiedSocketAddress.newBuilder().setProxyAddress(bridge)
                        .setTargetAddress((InetSocketAddress) address).build());
            }
            return b.build();
        });
    }

    /** Completes (on a gRPC thread) with Allow, Deny or Failure; never exceptionally. */
    CompletableFuture<Outcome> check(ExtAuthzProvider p, Target target, CheckInput in) {
        CompletableFuture<Outcome> result = new CompletableFuture<>();
        CheckRequest request = request(in, BodySettings.of(p));
        AuthorizationGrpc.newStub(channel(target)).withDeadlineAfter(Math.max(1, p.getTimeoutMs()), TimeUnit.MILLISECONDS)
                .check(request, new StreamObserver<>() {
                    @Override
                    public void onNext(CheckResponse r) {
                        result.complete(outcome(r, target));
                    }

                    @Override
                    public void onError(Throwable t) {
                        Status s = Status.fromThrowable(t);
                        result.complete(new Outcome.Failure(s.getCode() == Status.Code.DEADLINE_EXCEEDED
                                ? Outcome.Kind.TIMEOUT : Outcome.Kind.ERROR, "gRPC authorizer " + target + ": "
                                + s.getCode() + (s.getDescription() == null ? "" : " " + s.getDescription())));
                    }

                    @Override
                    public void onCompleted() {
                        result.complete(new Outcome.Failure(Outcome.Kind.ERROR, "gRPC authorizer " + target
                                + ": no response"));
                    }
                });
        return result;
    }

    /** @param settings the provider's body setting (packAsBytes), or null */
    static CheckRequest request(CheckInput in, BodySettings settings) {
        AttributeContext.HttpRequest.Builder http = AttributeContext.HttpRequest.newBuilder().setMethod(in.method())
                .setPath(in.pathAndQuery()).setHost(in.host() == null ? "" : in.host()).setScheme(in.scheme())
                .setProtocol(in.protocol());
        int q = in.pathAndQuery().indexOf('?');
        if (q >= 0) {
            http.setQuery(in.pathAndQuery().substring(q + 1));
        }
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(":method", in.method());
        headers.put(":path", in.pathAndQuery());
        if (in.host() != null) {
            headers.put(":authority", in.host());
        }
        headers.put(":scheme", in.scheme());
        in.headers().forEach(e -> headers.merge(e.getKey().toLowerCase(Locale.ROOT), e.getValue(), (a, b) -> a + "," + b));
        headers.remove("host");
        if (in.body() != null) {
            headers.put(CheckBody.PARTIAL_HEADER, Boolean.toString(in.body().partial()));
            body(http, in.body(), settings != null && settings.packAsBytes());
        }
        http.putAllHeaders(headers);
        return CheckRequest.newBuilder().setAttributes(AttributeContext.newBuilder()
                .setSource(peer(in.source(), in.sourcePrincipal()))
                .setDestination(peer(in.destination(), in.destinationPrincipal()))
                .setRequest(AttributeContext.Request.newBuilder().setHttp(http))).build();
    }

    /** The body exactly as held: raw bytes, or the same bytes as text only when they are UTF-8 (never replaced). */
    private static void body(AttributeContext.HttpRequest.Builder http, CheckBody body, boolean packAsBytes) {
        http.setSize(body.received());
        if (packAsBytes) {
            http.setRawBody(ByteString.copyFrom(body.bytes()));
            return;
        }
        try {
            http.setBody(StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(body.bytes())).toString());
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("the request body is not UTF-8 text, which a gRPC check's body"
                    + " must be (packAsBytes sends it as bytes)");
        }
    }

    private static AttributeContext.Peer peer(InetSocketAddress a, String principal) {
        return AttributeContext.Peer.newBuilder().setPrincipal(principal == null ? "" : principal)
                .setAddress(Address.newBuilder().setSocketAddress(SocketAddress.newBuilder()
                        .setAddress(a.getAddress().getHostAddress()).setPortValue(a.getPort()))).build();
    }

    private static Outcome outcome(CheckResponse r, Target target) {
        if (r.getStatus().getCode() == 0) {
            List<Outcome.HeaderChange> upstream = new ArrayList<>();
            for (HeaderValueOption o : r.getOkResponse().getHeadersList()) {
                String name = o.getHeader().getKey().toLowerCase(Locale.ROOT);
                if (HeaderSelection.passable(name, value(o))) {
                    upstream.add(new Outcome.HeaderChange(name, value(o), o.hasAppend() && o.getAppend().getValue()));
                }
            }
            List<String> removals = r.getOkResponse().getHeadersToRemoveList().stream()
                    .map(n -> n.toLowerCase(Locale.ROOT)).filter(HeaderSelection::passable).toList();
            List<Map.Entry<String, String>> downstream = r.getOkResponse().getResponseHeadersToAddList().stream()
                    .filter(o -> HeaderSelection.passable(o.getHeader().getKey(), value(o)))
                    .map(o -> Map.entry(o.getHeader().getKey().toLowerCase(Locale.ROOT), value(o))).toList();
            return new Outcome.Allow(List.copyOf(upstream), removals, downstream, "allowed by gRPC authorizer " + target);
        }
        var denied = r.getDeniedResponse();
        int status = denied.getStatus().getCode();
        List<Map.Entry<String, String>> headers = denied.getHeadersList().stream()
                .filter(o -> HeaderSelection.passable(o.getHeader().getKey(), value(o)))
                .map(o -> Map.entry(o.getHeader().getKey().toLowerCase(Locale.ROOT), value(o))).toList();
        return new Outcome.Deny(status >= 200 && status <= 599 ? status : 403, headers, denied.getBody(),
                "denied by gRPC authorizer " + target + " (status " + r.getStatus().getCode() + ")");
    }

    private static String value(HeaderValueOption o) {
        return o.getHeader().getValue().isEmpty() && !o.getHeader().getRawValue().isEmpty()
                ? o.getHeader().getRawValue().toString(StandardCharsets.UTF_8) : o.getHeader().getValue();
    }

    @Override
    public synchronized void close() {
        channels.values().forEach(ManagedChannel::shutdownNow);
        channels.clear();
    }
}
