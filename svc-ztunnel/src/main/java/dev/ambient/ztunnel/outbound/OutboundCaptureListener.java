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
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Port 15001: outbound connections redirected here by the capture rules (REDIRECT). The original
 * destination comes from SO_ORIGINAL_DST, the source workload from the connection's source address.
 */
public final class OutboundCaptureListener implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(OutboundCaptureListener.class);

    private final Transport transport;
    private final WorkloadStore store;
    private final OutboundProxy proxy;
    private final String nodeName;
    private Channel server;

    public OutboundCaptureListener(Transport transport, WorkloadStore store, OutboundProxy proxy, String nodeName) {
        this.transport = transport;
        this.store = store;
        this.proxy = proxy;
        this.nodeName = nodeName;
    }

    public void bind(InetSocketAddress address) {
        server = transport.listen(address, new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                PendingReads.install(ch, 1 << 20);
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
        Optional<Workload> source = store.current().workloadOnNode(from.getAddress(), nodeName);
        if (source.isEmpty()) {
            AccessLog.connection("outbound", from, "-", dst.get(), "-", "capture", 0, 0, Duration.ZERO, "refused",
                    "source " + from.getAddress().getHostAddress() + " is not a workload on node " + nodeName);
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

    @Override
    public void close() {
        if (server != null) {
            server.close().syncUninterruptibly();
        }
    }
}
