package dev.ambient.ztunnel.inpod;

import dev.ambient.net.NetworkNamespace;
import io.netty.channel.Channel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;

/**
 * One pod's network namespace as a place to create sockets: creation is handed to the shared
 * socket threads (bounded: a full queue sheds), which enter the namespace, create the socket
 * objects and come back; the event loops then register and connect them. Also counts the pod's
 * proxied connections, for draining.
 */
final class PodNamespace implements SocketNamespace {

    private final NetworkNamespace netns;
    private final String name;
    private final SocketThreads socketThreads;
    /** Proxied connections' sockets (accepted on 15001/15006, dialled to the app or passthrough). */
    private final ChannelGroup connections = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);

    PodNamespace(NetworkNamespace netns, String name, SocketThreads socketThreads) {
        this.netns = netns;
        this.name = name;
        this.socketThreads = socketThreads;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public <T> CompletableFuture<T> create(Callable<T> creation) {
        return socketThreads.create(netns, creation);
    }

    @Override
    public void track(Channel connection) {
        connections.add(connection);
    }

    int activeConnections() {
        return connections.size();
    }

    void closeConnections() {
        connections.close();
    }

    NetworkNamespace netns() {
        return netns;
    }
}
