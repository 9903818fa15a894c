package dev.ambient.ztunnel.dns;

import dev.ambient.net.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.socket.DatagramPacket;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.timeout.ReadTimeoutException;
import io.netty.handler.timeout.ReadTimeoutHandler;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Function;
import org.jboss.logging.Logger;

/**
 * Port 15053, UDP and TCP: the DNS traffic the capture rules redirect here. A UDP datagram is one
 * query (at most {@value DnsMessage#MAX_UDP} bytes read); a TCP connection carries length-prefixed
 * queries (each at most {@value #MAX_TCP_QUERY} bytes, at most {@value #TCP_PIPELINE} answered at
 * once, closed when idle), answered in any order as RFC 7766 allows. The client is found from the
 * source address ({@code clients}); in-pod it is always the pod.
 */
public final class DnsListener implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(DnsListener.class);
    /** A query never needs more: a 255-byte name, EDNS options. */
    static final int MAX_TCP_QUERY = 4096;
    static final int TCP_PIPELINE = 8;

    private final Transport transport;
    private final DnsProxy proxy;
    private final Function<InetAddress, DnsProxy.Client> clients;
    private final Consumer<Channel> onAccepted;
    private Channel udp;
    private Channel tcp;

    /**
     * @param clients the client a query from this address belongs to
     * @param onAccepted sees every accepted TCP connection (in-pod: counted for draining)
     */
    public DnsListener(Transport transport, DnsProxy proxy, Function<InetAddress, DnsProxy.Client> clients,
            Consumer<Channel> onAccepted) {
        this.transport = transport;
        this.proxy = proxy;
        this.clients = clients;
        this.onAccepted = onAccepted;
    }

    /** Binds UDP and TCP on {@code address}; call it where the sockets must live (in-pod: inside the pod). */
    public void bind(InetSocketAddress address) {
        udp = transport.reusePortOn(new Bootstrap()).group(transport.group())
                .channel(transport.isNative() ? EpollDatagramChannel.class : NioDatagramChannel.class)
                .option(ChannelOption.RCVBUF_ALLOCATOR, new FixedRecvByteBufAllocator(DnsMessage.MAX_UDP))
                .option(ChannelOption.SO_REUSEADDR, true)
                .handler(new SimpleChannelInboundHandler<DatagramPacket>() {
                    @Override
                    protected void channelRead0(ChannelHandlerContext ctx, DatagramPacket p) {
                        InetSocketAddress from = p.sender();
                        byte[] query = ByteBufUtil.getBytes(p.content());
                        Channel ch = ctx.channel();
                        proxy.answer(clients.apply(from.getAddress()), query, false).thenAccept(answer -> {
                            if (answer != null) {
                                ch.writeAndFlush(new DatagramPacket(Unpooled.wrappedBuffer(answer), from));
                            }
                        });
                    }

                    @Override
                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                        LOG.debugf("dns: udp on %s: %s", address, cause.getMessage()); // e.g. ICMP errors
                    }
                }).bind(address).syncUninterruptibly().channel();
        try {
            tcp = transport.listen(address, new ChannelInitializer<Channel>() {
                @Override
                protected void initChannel(Channel ch) {
                    InetSocketAddress from = (InetSocketAddress) ch.remoteAddress();
                    DnsProxy.Client client = clients.apply(from.getAddress());
                    if (!client.openTcp()) {
                        ch.close();
                        return;
                    }
                    onAccepted.accept(ch);
                    ch.closeFuture().addListener(f -> client.closedTcp());
                    ch.pipeline().addLast(
                            new ReadTimeoutHandler(proxy.limits().tcpIdleTimeout().toMillis(), TimeUnit.MILLISECONDS),
                            new LengthFieldBasedFrameDecoder(MAX_TCP_QUERY, 0, 2, 0, 2),
                            new TcpQueries(client));
                }
            });
        } catch (RuntimeException e) {
            udp.close();
            throw e;
        }
        LOG.debugf("dns: listening on %s (udp, tcp)", address);
    }

    /** Answers each query of one connection; stops reading while {@value #TCP_PIPELINE} are being answered. */
    private final class TcpQueries extends SimpleChannelInboundHandler<ByteBuf> {
        private final DnsProxy.Client client;
        private final AtomicInteger inFlight = new AtomicInteger();

        TcpQueries(DnsProxy.Client client) {
            this.client = client;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, ByteBuf frame) {
            Channel ch = ctx.channel();
            if (inFlight.incrementAndGet() >= TCP_PIPELINE) {
                ch.config().setAutoRead(false);
            }
            proxy.answer(client, ByteBufUtil.getBytes(frame), true).whenComplete((answer, err) -> {
                if (answer != null) {
                    ByteBuf out = ch.alloc().buffer(answer.length + 2);
                    out.writeShort(answer.length).writeBytes(answer);
                    ch.writeAndFlush(out);
                }
                if (inFlight.decrementAndGet() < TCP_PIPELINE) {
                    ch.config().setAutoRead(true);
                }
            });
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof TooLongFrameException) {
                client.refusedOversized(cause.getMessage());
            } else if (!(cause instanceof ReadTimeoutException)) {
                LOG.debugf("dns: tcp from %s: %s", ctx.channel().remoteAddress(), cause.getMessage());
            }
            ctx.close();
        }
    }

    /** The listening sockets (UDP, TCP), once bound. */
    public List<Channel> channels() {
        return List.of(udp, tcp);
    }

    @Override
    public void close() {
        for (Channel c : new Channel[] {udp, tcp}) {
            if (c != null) {
                c.close().syncUninterruptibly();
            }
        }
    }
}
