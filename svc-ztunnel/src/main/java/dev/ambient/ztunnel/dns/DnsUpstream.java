package dev.ambient.ztunnel.dns;

import dev.ambient.net.SocketMark;
import dev.ambient.net.Transport;
import dev.ambient.ztunnel.inpod.SocketNamespace;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.DatagramPacket;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import java.net.InetSocketAddress;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Asks the upstream resolvers, each in turn until one answers within the timeout: over UDP from a
 * fresh, connected socket per query (a random source port and a random id: an answer must come from
 * the server, to that port, with that id and our question, or it is ignored), or over TCP with one
 * connection per query. Sockets are created where the client's would be (in-pod: inside the pod's
 * network namespace, so the resolver sees the pod's address and the pod's routes apply) and carry
 * the ztunnel's mark, which the pod's rules exempt from DNS capture.
 */
public final class DnsUpstream {

    /** Why no answer came; the message names the servers tried. */
    public static final class Failure extends Exception {
        private final String kind;

        Failure(String kind, String message) {
            super(message, null, false, false);
            this.kind = kind;
        }

        /** For the metric: "timeout", "error", "no_upstream". */
        public String kind() {
            return kind;
        }
    }

    // Query ids an off-path spoofer cannot guess. Per instance, not static: native-image would
    // otherwise bake one seeded generator into the executable (native-images checks this).
    private final SecureRandom random = new SecureRandom();

    private final Transport transport;
    private final List<InetSocketAddress> servers;
    private final Duration timeout;
    private final int socketMark;
    private final Class<? extends DatagramChannel> datagramChannel;

    public DnsUpstream(Transport transport, List<InetSocketAddress> servers, Duration timeout, int socketMark) {
        this.transport = transport;
        this.servers = List.copyOf(servers);
        this.timeout = timeout;
        this.socketMark = socketMark;
        this.datagramChannel = transport.isNative() ? EpollDatagramChannel.class : NioDatagramChannel.class;
    }

    public List<InetSocketAddress> servers() {
        return servers;
    }

    /** The cache's name for these servers. */
    public String describe() {
        return servers.toString();
    }

    /**
     * Sends {@code query} (its id replaced by a random one) and completes with the answer, its id
     * set back to the query's; fails with {@link Failure} when no server answered.
     */
    public CompletableFuture<DnsMessage> exchange(DnsMessage query, boolean tcp, SocketNamespace netns) {
        if (servers.isEmpty()) {
            return CompletableFuture.failedFuture(new Failure("no_upstream", "no upstream resolver configured"));
        }
        CompletableFuture<DnsMessage> out = new CompletableFuture<>();
        attempt(query, tcp, netns, 0, out);
        return out;
    }

    private void attempt(DnsMessage query, boolean tcp, SocketNamespace netns, int index,
            CompletableFuture<DnsMessage> out) {
        InetSocketAddress server = servers.get(index);
        int id = random.nextInt(1 << 16);
        byte[] wire = DnsMessage.withId(query.raw(), id);
        CompletableFuture<DnsMessage> one = tcp ? tcp(server, wire, id, query, netns) : udp(server, wire, id, query, netns);
        one.whenComplete((answer, err) -> {
            if (err == null) {
                out.complete(DnsMessage.parseQuietly(DnsMessage.withId(answer.raw(), query.id())));
                return;
            }
            if (index + 1 < servers.size()) {
                attempt(query, tcp, netns, index + 1, out);
                return;
            }
            Throwable cause = err instanceof java.util.concurrent.CompletionException ce && ce.getCause() != null
                    ? ce.getCause() : err;
            out.completeExceptionally(new Failure(cause instanceof TimeoutException ? "timeout" : "error",
                    "no answer from " + servers + " (" + (tcp ? "tcp" : "udp") + "): last " + cause.getMessage()));
        });
    }

    private CompletableFuture<DnsMessage> udp(InetSocketAddress server, byte[] wire, int id, DnsMessage query,
            SocketNamespace netns) {
        CompletableFuture<DnsMessage> result = new CompletableFuture<>();
        Bootstrap b = new Bootstrap().group(transport.group()).channel(datagramChannel)
                .option(ChannelOption.RCVBUF_ALLOCATOR, new FixedRecvByteBufAllocator(DnsMessage.MAX_UDP))
                .handler(new ChannelInitializer<DatagramChannel>() {
                    @Override
                    protected void initChannel(DatagramChannel ch) {
                        mark(ch);
                        ch.pipeline().addLast(new SimpleChannelInboundHandler<DatagramPacket>() {
                            @Override
                            protected void channelRead0(ChannelHandlerContext ctx, DatagramPacket p) {
                                if (server.equals(p.sender())) {
                                    accept(ByteBufUtil.getBytes(p.content()), id, query, result);
                                }
                            }

                            @Override
                            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                result.completeExceptionally(cause); // e.g. port unreachable: refused at once
                            }
                        });
                    }
                });
        dial(netns, () -> b.connect(server), wire, false, result);
        return result;
    }

    private CompletableFuture<DnsMessage> tcp(InetSocketAddress server, byte[] wire, int id, DnsMessage query,
            SocketNamespace netns) {
        CompletableFuture<DnsMessage> result = new CompletableFuture<>();
        Bootstrap b = new Bootstrap().group(transport.group()).channel(transport.socketChannel())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) timeout.toMillis())
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        mark(ch);
                        ch.pipeline().addLast(new LengthFieldBasedFrameDecoder(65535, 0, 2, 0, 2),
                                new SimpleChannelInboundHandler<ByteBuf>() {
                                    @Override
                                    protected void channelRead0(ChannelHandlerContext ctx, ByteBuf frame) {
                                        accept(ByteBufUtil.getBytes(frame), id, query, result);
                                    }

                                    @Override
                                    public void channelInactive(ChannelHandlerContext ctx) {
                                        result.completeExceptionally(new IllegalStateException(
                                                "connection to " + server + " closed without an answer"));
                                    }

                                    @Override
                                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                        result.completeExceptionally(cause);
                                        ctx.close();
                                    }
                                });
                    }
                });
        byte[] framed = new byte[wire.length + 2];
        framed[0] = (byte) (wire.length >> 8);
        framed[1] = (byte) wire.length;
        System.arraycopy(wire, 0, framed, 2, wire.length);
        dial(netns, () -> b.connect(server), framed, true, result);
        return result;
    }

    private void mark(Channel ch) {
        if (socketMark != 0) {
            SocketMark.set(ch, socketMark);
        }
    }

    /** Creates the socket where the client's would be, sends, and closes it when the answer (or the timeout) comes. */
    private void dial(SocketNamespace netns, java.util.concurrent.Callable<ChannelFuture> connect, byte[] wire,
            boolean tcp, CompletableFuture<DnsMessage> result) {
        netns.create(connect).whenComplete((connecting, createErr) -> {
            if (createErr != null) {
                result.completeExceptionally(createErr);
                return;
            }
            Channel ch = connecting.channel();
            var timer = ch.eventLoop().schedule(() -> result.completeExceptionally(
                    new TimeoutException("no answer within " + timeout.toMillis() + " ms")), timeout.toMillis(),
                    TimeUnit.MILLISECONDS);
            result.whenComplete((a, e) -> {
                timer.cancel(false);
                ch.close();
            });
            connecting.addListener((ChannelFutureListener) f -> {
                if (!f.isSuccess()) {
                    result.completeExceptionally(f.cause());
                    return;
                }
                ch.writeAndFlush(tcp ? Unpooled.wrappedBuffer(wire)
                        : new DatagramPacket(Unpooled.wrappedBuffer(wire), (InetSocketAddress) ch.remoteAddress()))
                        .addListener((ChannelFutureListener) w -> {
                            if (!w.isSuccess()) {
                                result.completeExceptionally(w.cause());
                            }
                        });
            });
        });
    }

    /** An answer counts only with our id and our question; anything else is ignored (spoofing, stale). */
    private static void accept(byte[] bytes, int id, DnsMessage query, CompletableFuture<DnsMessage> result) {
        DnsMessage answer = DnsMessage.parseQuietly(bytes);
        if (answer == null || answer.id() != id || !answer.response() || answer.questions().size() != 1) {
            return;
        }
        DnsMessage.Question asked = query.questions().getFirst();
        DnsMessage.Question got = answer.questions().getFirst();
        if (got.type() == asked.type() && got.qclass() == asked.qclass()
                && got.name().toLowerCase(Locale.ROOT).equals(asked.name().toLowerCase(Locale.ROOT))) {
            result.complete(answer);
        }
    }
}
