package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.HboneAdmission;
import dev.ambient.hbone.HboneServerInitializer;
import dev.ambient.hbone.HboneSettings;
import dev.ambient.net.Transport;
import dev.ambient.waypoint.identity.WaypointIdentity;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import org.jboss.logging.Logger;

/**
 * The HBONE listener on 15008: mTLS with the waypoint's current certificate (a renewed one applies
 * to new connections), each CONNECT handed to the {@link InboundDispatcher}. Keeps its connections
 * so that draining can tell each client to go away (GOAWAY) while open streams finish.
 */
public final class HboneListener implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(HboneListener.class);

    private final Channel server;
    private final ChannelGroup connections = new DefaultChannelGroup("waypoint-hbone", GlobalEventExecutor.INSTANCE);

    /** @param admission how many connections the listener holds (per source address, per identity, in all) */
    public HboneListener(Transport transport, InetSocketAddress address, WaypointIdentity identity,
            HboneSettings settings, HboneAdmission admission, InboundDispatcher dispatcher) {
        HboneServerInitializer hbone = new HboneServerInitializer(() -> {
            WaypointIdentity.TlsMaterial m = identity.current();
            return m == null ? null : m.server();
        }, settings, admission, dispatcher);
        this.server = transport.listen(address, hbone.acceptGate(), new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                connections.add(ch);
                ch.pipeline().addLast(hbone);
            }
        });
        LOG.infof("HBONE listener on %s", server.localAddress());
    }

    public InetSocketAddress localAddress() {
        return (InetSocketAddress) server.localAddress();
    }

    public int connections() {
        return connections.size();
    }

    /** Asks every connected client to open no new stream on its connection (new connections are still accepted). */
    public void goAway() {
        connections.forEach(HboneServerInitializer::goAway);
        LOG.infof("draining: sent GOAWAY on %d HBONE connections", connections.size());
    }

    @Override
    public void close() {
        server.close().syncUninterruptibly();
        connections.close().awaitUninterruptibly(2_000);
    }
}
