package dev.ambient.ztunnel.inpod;

import com.google.protobuf.ByteString;
import dev.ambient.hbone.ConnectionPool;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.zds.WorkloadInfo;
import dev.ambient.ztunnel.state.StateSnapshot;
import io.netty.channel.Channel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One pod enrolled over ZDS: what the agent said of it, its network namespace (held open by the
 * fd the agent passed), the addresses seen inside, its listeners there, its own connection pool,
 * and where it is in its life.
 */
public final class InpodWorkload {

    public enum State {
        /** Listeners being opened. */
        STARTING,
        /** Listening in the pod's namespace. */
        RUNNING,
        /** Deleted: no longer accepting; open connections may finish until the drain timeout. */
        DRAINING,
        /** Gone: every socket and the namespace fd closed. */
        REMOVED
    }

    /** A listening socket inside the pod, for the config dump. */
    public record Listener(String purpose, InetSocketAddress address, Channel channel) {
    }

    private final String uid;
    private final WorkloadInfo info;
    private final String nodeName;
    private final PodNamespace sockets;
    private final List<InetAddress> addresses;
    private final Workload fromAdd;
    private final Instant added = Instant.now();
    private final List<Listener> listeners = new ArrayList<>();
    /** HBONE connections accepted on 15008; closed when the drain ends. */
    final ChannelGroup hboneConnections = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
    private volatile SpiffeId identity;
    private volatile ConnectionPool pool;
    private volatile State state = State.STARTING;
    private volatile String error = "";
    /** The last resolution, reused while the state snapshot is the same object. */
    private volatile Resolved resolved;
    /** The agent's latest Add said it installs reply routing here: the application may see the client's address. */
    private volatile boolean replyRouting;

    private record Resolved(StateSnapshot state, Workload workload) {
    }

    InpodWorkload(String uid, WorkloadInfo info, String nodeName, PodNamespace sockets, List<InetAddress> addresses) {
        this.uid = uid;
        this.info = info;
        this.nodeName = nodeName;
        this.sockets = sockets;
        this.addresses = List.copyOf(addresses);
        Workload.Builder w = Workload.newBuilder().setUid(uid).setName(info.getName())
                .setNamespace(info.getNamespace()).setServiceAccount(info.getServiceAccount())
                .setNode(nodeName).setTunnelProtocol(TunnelProtocol.HBONE);
        addresses.forEach(a -> w.addAddresses(ByteString.copyFrom(a.getAddress())));
        this.fromAdd = w.build();
    }

    /**
     * The workload as the proxies see it: the control plane's entry for this pod (by namespace and
     * name on this node, else by one of its addresses) or, until it knows the pod, what the Add
     * request said with the addresses found in the pod's namespace.
     */
    public Workload resolve(StateSnapshot state) {
        Resolved r = resolved;
        if (r != null && r.state() == state) {
            return r.workload();
        }
        Workload found = null;
        for (Workload w : state.workloadsOnNode(nodeName)) {
            if (w.getNamespace().equals(info.getNamespace()) && w.getName().equals(info.getName())) {
                found = w;
                break;
            }
        }
        for (int i = 0; found == null && i < addresses.size(); i++) {
            found = state.workloadByAddress(addresses.get(i)).orElse(null);
        }
        Workload w = found == null ? fromAdd : found;
        resolved = new Resolved(state, w);
        return w;
    }

    /** The pod itself, when {@code ip} is one of its addresses. */
    Optional<Workload> ifAddressOf(StateSnapshot state, InetAddress ip) {
        Workload w = resolve(state);
        return w.getAddressesList().contains(ByteString.copyFrom(ip.getAddress())) ? Optional.of(w) : Optional.empty();
    }

    public String uid() {
        return uid;
    }

    /** Whether the agent installs reply routing for transparent sockets in this pod (its latest Add said so). */
    public boolean replyRouting() {
        return replyRouting;
    }

    void replyRouting(boolean replyRouting) {
        this.replyRouting = replyRouting;
    }

    public WorkloadInfo info() {
        return info;
    }

    public List<InetAddress> addresses() {
        return addresses;
    }

    public String netns() {
        return sockets.netns().describe();
    }

    public SpiffeId identity() {
        return identity;
    }

    void identity(SpiffeId id) {
        this.identity = id;
    }

    public State state() {
        return state;
    }

    void state(State s) {
        this.state = s;
    }

    public String error() {
        return error;
    }

    void error(String e) {
        this.error = e;
    }

    public Instant added() {
        return added;
    }

    public synchronized List<Listener> listeners() {
        return List.copyOf(listeners);
    }

    synchronized void listening(Listener l) {
        listeners.add(l);
    }

    /** Closes the listening sockets and waits until they are closed: no new connection is accepted. */
    void stopAccepting() {
        List<Listener> closing;
        synchronized (this) {
            closing = List.copyOf(listeners);
            listeners.clear();
        }
        // Waited for outside the lock: the admin page reads the listeners on an event loop.
        for (Listener l : closing) {
            l.channel().close().awaitUninterruptibly(5_000);
        }
    }

    public int activeConnections() {
        return sockets.activeConnections();
    }

    public int pooledConnections() {
        ConnectionPool p = pool;
        return p == null ? 0 : p.totalConnections();
    }

    void pool(ConnectionPool p) {
        this.pool = p;
    }

    ConnectionPool pool() {
        return pool;
    }

    PodNamespace sockets() {
        return sockets;
    }

    String describe() {
        return info.getNamespace() + "/" + info.getName() + " (uid " + uid + ")";
    }
}
