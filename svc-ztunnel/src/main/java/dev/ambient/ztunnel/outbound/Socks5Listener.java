package dev.ambient.ztunnel.outbound;

import dev.ambient.net.PendingReads;
import dev.ambient.net.Transport;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.metrics.AccessLog;
import dev.ambient.ztunnel.state.StateSnapshot;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * SOCKS5 (RFC 1928, CONNECT, no authentication) on the node IP, as Istio's ztunnel offers for
 * testing without traffic capture: a local client connects here and is identified as the workload
 * whose IP it connects from. Names are resolved against the mesh's services, never DNS.
 */
public final class Socks5Listener implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Socks5Listener.class);

    static final byte VERSION = 5;
    static final byte REPLY_OK = 0;
    static final byte REPLY_FAILURE = 1;
    static final byte REPLY_NOT_ALLOWED = 2;
    static final byte REPLY_HOST_UNREACHABLE = 4;
    static final byte REPLY_REFUSED = 5;
    static final byte REPLY_COMMAND_UNSUPPORTED = 7;
    static final byte REPLY_ADDRESS_UNSUPPORTED = 8;

    private final Transport transport;
    private final WorkloadStore store;
    private final OutboundProxy proxy;
    private final String nodeName;
    private Channel server;

    public Socks5Listener(Transport transport, WorkloadStore store, OutboundProxy proxy, String nodeName) {
        this.transport = transport;
        this.store = store;
        this.proxy = proxy;
        this.nodeName = nodeName;
    }

    public void bind(InetSocketAddress address) {
        server = transport.listen(address, new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                ch.pipeline().addLast(new Handshake());
            }
        });
        LOG.infof("outbound: SOCKS5 listening on %s", address);
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) server.localAddress();
    }

    @Override
    public void close() {
        if (server != null) {
            server.close().syncUninterruptibly();
        }
    }

    /** Reads the greeting and the CONNECT request, then hands the connection to the proxy. */
    private final class Handshake extends ByteToMessageDecoder {
        private boolean greeted;

        @Override
        protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
            if (!greeted) {
                if (in.readableBytes() < 2) {
                    return;
                }
                int methods = in.getUnsignedByte(in.readerIndex() + 1);
                if (in.getByte(in.readerIndex()) != VERSION) {
                    reject(ctx, "not SOCKS5");
                    return;
                }
                if (in.readableBytes() < 2 + methods) {
                    return;
                }
                in.skipBytes(2);
                boolean noAuth = false;
                for (int i = 0; i < methods; i++) {
                    noAuth |= in.readByte() == 0;
                }
                if (!noAuth) {
                    ctx.writeAndFlush(ctx.alloc().buffer(2).writeByte(VERSION).writeByte(0xFF))
                            .addListener(ChannelFutureListener.CLOSE);
                    in.skipBytes(in.readableBytes());
                    return;
                }
                greeted = true;
                ctx.writeAndFlush(ctx.alloc().buffer(2).writeByte(VERSION).writeByte(0));
            }
            Optional<Request> request = readRequest(ctx, in);
            if (request.isEmpty()) {
                return;
            }
            Request r = request.get();
            // Hold whatever the client sends next until the upstream is ready; bytes already read
            // past the request flow from this decoder into the holder when it is removed.
            ctx.channel().config().setAutoRead(false);
            ctx.pipeline().addAfter(ctx.name(), PendingReads.NAME, new PendingReads(1 << 20));
            ctx.pipeline().remove(this);
            if (r.reply != REPLY_OK) {
                reply(ctx.channel(), r.reply).addListener(ChannelFutureListener.CLOSE);
                return;
            }
            connect(ctx.channel(), r.destination);
        }

        private Optional<Request> readRequest(ChannelHandlerContext ctx, ByteBuf in) {
            if (in.readableBytes() < 5) {
                return Optional.empty();
            }
            int i = in.readerIndex();
            byte cmd = in.getByte(i + 1);
            byte atyp = in.getByte(i + 3);
            int addrLen = switch (atyp) {
                case 1 -> 4;
                case 4 -> 16;
                case 3 -> 1 + in.getUnsignedByte(i + 4);
                default -> -1;
            };
            if (in.getByte(i) != VERSION) {
                in.skipBytes(in.readableBytes());
                return Optional.of(new Request(null, REPLY_FAILURE));
            }
            if (addrLen < 0) {
                in.skipBytes(in.readableBytes());
                return Optional.of(new Request(null, REPLY_ADDRESS_UNSUPPORTED));
            }
            if (in.readableBytes() < 4 + addrLen + 2) {
                return Optional.empty();
            }
            in.skipBytes(4);
            InetAddress ip = null;
            String name = null;
            try {
                if (atyp == 3) {
                    byte[] raw = new byte[in.readUnsignedByte()];
                    in.readBytes(raw);
                    name = new String(raw, StandardCharsets.US_ASCII);
                } else {
                    byte[] raw = new byte[addrLen];
                    in.readBytes(raw);
                    ip = InetAddress.getByAddress(raw);
                }
            } catch (java.net.UnknownHostException e) {
                return Optional.of(new Request(null, REPLY_ADDRESS_UNSUPPORTED));
            }
            int port = in.readUnsignedShort();
            if (cmd != 1) {
                return Optional.of(new Request(null, REPLY_COMMAND_UNSUPPORTED));
            }
            if (ip == null) {
                ip = resolve(store.current(), name).orElse(null);
                if (ip == null) {
                    LOG.infof("socks5: %s asked for unknown name %s", ctx.channel().remoteAddress(), name);
                    return Optional.of(new Request(null, REPLY_HOST_UNREACHABLE));
                }
            }
            return Optional.of(new Request(new InetSocketAddress(ip, port), REPLY_OK));
        }

        private void reject(ChannelHandlerContext ctx, String why) {
            LOG.infof("socks5: closing %s: %s", ctx.channel().remoteAddress(), why);
            ctx.close();
        }
    }

    private record Request(InetSocketAddress destination, byte reply) {
    }

    private void connect(Channel client, InetSocketAddress dst) {
        InetSocketAddress from = (InetSocketAddress) client.remoteAddress();
        StateSnapshot state = store.current();
        Optional<Workload> source = state.workloadOnNode(from.getAddress(), nodeName);
        if (source.isEmpty()) {
            AccessLog.connection("outbound", from, "-", dst, "-", "socks5", 0, 0, Duration.ZERO, "refused",
                    "source " + from.getAddress().getHostAddress() + " is not a workload on node " + nodeName);
            reply(client, REPLY_NOT_ALLOWED).addListener(ChannelFutureListener.CLOSE);
            return;
        }
        proxy.connect(source.get(), from, dst, client.eventLoop()).whenComplete((established, err) -> {
            if (err != null) {
                Throwable cause = err instanceof java.util.concurrent.CompletionException ? err.getCause() : err;
                int status = cause instanceof OutboundProxy.OutboundException oe ? oe.status() : 0;
                byte code = status == 401 ? REPLY_NOT_ALLOWED : status == 503 ? REPLY_REFUSED : REPLY_FAILURE;
                reply(client, code).addListener(ChannelFutureListener.CLOSE);
                return;
            }
            reply(client, REPLY_OK).addListener(f -> {
                if (f.isSuccess()) {
                    established.relay(client);
                } else {
                    client.close();
                }
            });
        });
    }

    private static io.netty.channel.ChannelFuture reply(Channel ch, byte code) {
        ByteBuf b = ch.alloc().buffer(10);
        b.writeByte(VERSION).writeByte(code).writeByte(0).writeByte(1).writeInt(0).writeShort(0);
        return ch.writeAndFlush(b);
    }

    /** A service hostname (or its short forms "name.ns" / "name.ns.svc") to its first VIP, or an IP literal. */
    static Optional<InetAddress> resolve(StateSnapshot state, String name) {
        try {
            return Optional.of(name.indexOf(':') >= 0 ? Inet6Address.ofLiteral(name) : Inet4Address.ofLiteral(name));
        } catch (IllegalArgumentException notLiteral) {
            // a name: look it up below
        }
        for (Service s : state.services()) {
            String host = s.getHostname();
            String shortName = s.getName() + "." + s.getNamespace();
            if ((host.equals(name) || shortName.equals(name) || (shortName + ".svc").equals(name))
                    && s.getAddressesCount() > 0) {
                try {
                    return Optional.of(InetAddress.getByAddress(s.getAddresses(0).getAddress().toByteArray()));
                } catch (java.net.UnknownHostException e) {
                    return Optional.empty();
                }
            }
        }
        return Optional.empty();
    }
}
