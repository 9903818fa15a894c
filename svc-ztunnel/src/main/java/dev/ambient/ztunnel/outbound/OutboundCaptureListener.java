package dev.ambient.ztunnel.outbound;

import dev.ambient.net.OriginalDestination;
import dev.ambient.net.PendingReads;
import dev.ambient.net.Transport;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.metrics.AccessLog;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;
import org.jboss.logging.Logger;

/**
 * Port 15001: outbound connections redirected here by the capture rules (REDIRECT). The original
 * destination comes from SO_ORIGINAL_DST, the source workload from the connection's source address.
 */
public final class OutboundCaptureListener implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(OutboundCaptureListener.class);

    private final Transport transport;
    private final OutboundProxy proxy;
    private final Function<InetAddress, Optional<Workload>> sources;
    private final String sourcesDescription;
    private final Consumer<Channel> onAccepted;
    private Channel server;

    /** Shared mode: the source workload is the one on this node with the connection's source address. */
    public OutboundCaptureListener(Transport transport, WorkloadStore store, OutboundProxy proxy, String nodeName) {
        this(transport, proxy, ip -> store.current().workloadOnNode(ip, nodeName), "a workload on node " + nodeName,
                ch -> { });
    }

    /**
     * @param sources the workload a connection from this address comes from (in-pod: the pod
     *        itself, whatever address it uses)
     * @param onAccepted sees every accepted connection (in-pod: counted for draining)
     */
    public OutboundCaptureListener(Transport transport, OutboundProxy proxy,
            Function<InetAddress, Optional<Workload>> sources, String sourcesDescription,
            Consumer<Channel> onAccepted) {
        this.transport = transport;
        this.proxy = proxy;
        this.sources = sources;
        this.sourcesDescription = sourcesDescription;
        this.onAccepted = onAccepted;
    }

    public void bind(InetSocketAddress address) {
        server = transport.listen(address, new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                PendingReads.install(ch, 1 << 20);
                onAccepted.accept(ch);
                accepted(ch);
            }
        });
        LOG.infof("outbound: capturing on %s", address);
    }

    private void accepted(Channel client) {
        InetSocketAddress from = (InetSocketAddress) client.remoteAddress();
        Optional<InetSocketAddress> dst = OriginalDestination.of(client);
        if (dst.isEmpty()) {
            AccessLog.connection("outbound", from, "-", null, "-", "capture", 0, 0, Duration.ZERO, "refused",
                    "no original destination: connection was not redirected");
            client.close();
            return;
        }
        Optional<Workload> source = sources.apply(from.getAddress());
        if (source.isEmpty()) {
            AccessLog.connection("outbound", from, "-", dst.get(), "-", "capture", 0, 0, Duration.ZERO, "refused",
                    "source " + from.getAddress().getHostAddress() + " is not " + sourcesDescription);
            client.close();
            return;
        }
        proxy.connect(source.get(), from, dst.get(), client.eventLoop()).whenComplete((established, err) -> {
            if (err != null) {
                // The application sees a reset, as it would from an unreachable or refusing peer.
                client.config().setOption(ChannelOption.SO_LINGER, 0);
                client.close();
            } else {
                established.relay(client);
            }
        });
    }

    /** The listening socket, once bound. */
    public Channel channel() {
        return server;
    }

    @Override
    public void close() {
        if (server != null) {
            server.close().syncUninterruptibly();
        }
    }
}
