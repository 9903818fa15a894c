package dev.ambient.xds.discovery;

import dev.ambient.auth.Caller;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Node;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.xds.model.MeshSnapshot;
import dev.ambient.xds.model.MeshSnapshot.Entry;
import dev.ambient.xds.security.StreamAuthorizer;
import io.grpc.Status;
import io.smallrye.mutiny.subscription.MultiEmitter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * One client's delta discovery stream: its node, its subscriptions per type, and per type what
 * it holds (name -> version, as far as this server knows: what it was sent, or told us it had).
 *
 * <p>Flow control: per type at most one response is unacknowledged. While a response awaits its
 * ACK/NACK, changes are only noted (as names to re-check, or "re-diff everything" when too
 * many); the next response is computed when the ACK arrives, against the latest snapshot. So a
 * slow client costs at most one response per type in flight plus a set of names, never a queue
 * of snapshots, and it always converges to the newest state. A NACK is logged and counted; the
 * client keeps its previous state, the server does not resend the world (what it refused is sent
 * again when it changes again, as in Istio).
 *
 * <p>All methods are called on the push pool (never on an event loop) and serialise on this
 * object; responses are emitted in nonce order.
 */
final class ClientConnection {

    private static final Logger LOG = Logger.getLogger(ClientConnection.class);

    /** Subscription state and held resources of one type URL. */
    static final class TypeState {
        final String typeUrl;
        boolean wildcard;
        /** Explicit subscriptions (when not wildcard). */
        final Set<String> names = new HashSet<>();
        /** What the client holds as far as we know: name -> version. */
        final Map<String, String> held = new HashMap<>();
        /** Names to re-check at the next flush. */
        final Set<String> dirty = new HashSet<>();
        /** Explicitly subscribed names not yet answered (answered as removed when absent). */
        final Set<String> justSubscribed = new HashSet<>();
        /** Re-diff the whole view at the next flush. */
        boolean full = true;
        boolean initialSent;
        /** When the oldest change not yet sent reached the server (System.nanoTime), 0 if none. */
        long changedSince;
        String pendingNonce;
        long pendingSentAtMillis;
        String lastSentNonce;
        String lastAckedNonce;
        long lastAckMillis;
        long pushes;
        long resourcesSent;
        long removalsSent;
        long acks;
        long nacks;
        String lastNack;

        TypeState(String typeUrl) {
            this.typeUrl = typeUrl;
        }
    }

    private final DiscoveryHub hub;
    private final MultiEmitter<? super DeltaDiscoveryResponse> out;
    /** Who the stream's token says it is, and from where. */
    private final Caller caller;
    private final String peer;
    private final StreamAuthorizer authorizer;
    private final int seq;
    private final long connectedAtMillis = System.currentTimeMillis();
    private final Map<String, TypeState> types = new LinkedHashMap<>();
    private Node node;
    private ClientScope scope;
    private String id;
    private boolean closed;

    ClientConnection(DiscoveryHub hub, MultiEmitter<? super DeltaDiscoveryResponse> out, Caller caller, String peer,
            StreamAuthorizer authorizer) {
        this.hub = hub;
        this.out = out;
        this.caller = caller;
        this.peer = peer;
        this.authorizer = authorizer;
        this.seq = hub.nextConnectionId();
    }

    String roleTag() {
        return DiscoveryMetrics.roleTag(node.getRole());
    }

    String id() {
        return id;
    }

    // ---- requests -----------------------------------------------------------------------------

    synchronized void onRequest(DeltaDiscoveryRequest req) {
        if (closed) {
            return;
        }
        try {
            handle(req);
        } catch (StreamAuthorizer.Denied e) {
            LOG.warnf("xds: refusing stream #%d (node %s) from %s: %s", seq, req.getNode().getId(), peer, e.getMessage());
            hub.metrics().refused("permission_denied");
            fail(Status.PERMISSION_DENIED.withDescription(e.getMessage()));
        } catch (IllegalArgumentException e) {
            LOG.warnf("xds: refusing stream %s: %s", id != null ? id : "#" + seq, e.getMessage());
            fail(Status.INVALID_ARGUMENT.withDescription(e.getMessage()));
        } catch (RuntimeException e) {
            LOG.errorf(e, "xds: stream %s failed", id != null ? id : "#" + seq);
            fail(Status.INTERNAL.withDescription("internal error"));
        }
    }

    private void handle(DeltaDiscoveryRequest req) {
        if (node == null) {
            if (!req.hasNode()) {
                throw new IllegalArgumentException("the first request of a stream must carry the node");
            }
            ClientScope granted = ClientScope.of(authorizer.grant(req.getNode(), caller), hub);
            node = req.getNode();
            scope = granted;
            id = (node.getId().isEmpty() ? "anonymous" : node.getId()) + "-" + seq;
            hub.register(this);
            LOG.infof("xds: %s connected as %s from %s (%s; sees %s)", id, caller, peer, roleTag(), scope.describe());
        }
        String type = req.getTypeUrl();
        if (type.isEmpty()) {
            throw new IllegalArgumentException("a request must name its type_url");
        }
        TypeState ts = types.get(type);
        if (ts == null) {
            subscribe(type, req);
            return;
        }
        if (!req.getResponseNonce().isEmpty()) {
            acknowledge(ts, req);
        }
        boolean changed = false;
        for (String n : req.getResourceNamesSubscribeList()) {
            if (n.equals("*")) {
                if (!ts.wildcard) {
                    ts.wildcard = true;
                    ts.full = true;
                    changed = true;
                }
            } else if (!ts.wildcard && ts.names.add(n)) {
                ts.dirty.add(n);
                ts.justSubscribed.add(n);
                changed = true;
            }
        }
        for (String n : req.getResourceNamesUnsubscribeList()) {
            if (n.equals("*")) {
                if (ts.wildcard) {
                    // Leaving wildcard: the client keeps only what it names explicitly.
                    ts.wildcard = false;
                    ts.held.keySet().retainAll(ts.names);
                }
            } else if (!ts.wildcard && ts.names.remove(n)) {
                // The client drops it itself; we forget it.
                ts.held.remove(n);
                ts.dirty.remove(n);
                ts.justSubscribed.remove(n);
            }
        }
        if (changed && ts.changedSince == 0) {
            ts.changedSince = System.nanoTime();
        }
        flush(ts);
    }

    private void subscribe(String type, DeltaDiscoveryRequest req) {
        TypeState ts = new TypeState(type);
        List<String> subs = req.getResourceNamesSubscribeList();
        ts.wildcard = subs.isEmpty() || subs.contains("*");
        if (!ts.wildcard) {
            ts.names.addAll(subs);
            ts.justSubscribed.addAll(subs);
        }
        ts.held.putAll(req.getInitialResourceVersionsMap());
        types.put(type, ts);
        LOG.debugf("xds: %s subscribes to %s (%s, holding %d)", id, DiscoveryMetrics.shortType(type),
                ts.wildcard ? "wildcard" : ts.names.size() + " names", ts.held.size());
        flush(ts);
    }

    private void acknowledge(TypeState ts, DeltaDiscoveryRequest req) {
        String nonce = req.getResponseNonce();
        boolean current = nonce.equals(ts.pendingNonce);
        if (req.hasErrorDetail()) {
            ts.nacks++;
            String msg = req.getErrorDetail().getMessage().replaceAll("[\\r\\n]+", " ");
            ts.lastNack = nonce + ": " + msg;
            hub.metrics().rejected(ts.typeUrl);
            LOG.warnf("xds: NACK from %s type=%s nonce=%s%s: %s", id, DiscoveryMetrics.shortType(ts.typeUrl), nonce,
                    current ? "" : " (stale)", msg);
        } else if (current) {
            ts.acks++;
            ts.lastAckedNonce = nonce;
            ts.lastAckMillis = System.currentTimeMillis();
        }
        if (current) {
            ts.pendingNonce = null;
        }
    }

    // ---- pushes -------------------------------------------------------------------------------

    /** A new snapshot was dispatched: note what changed, push what can be pushed now. */
    synchronized void onSnapshot(Map<String, Set<String>> changed, boolean waypointInputs, long since) {
        if (closed || node == null) {
            return;
        }
        for (TypeState ts : types.values()) {
            boolean noted = false;
            if (scope.incremental()) {
                Set<String> names = changed.get(ts.typeUrl);
                if (names != null && !ts.full) {
                    if (ts.wildcard) {
                        if (ts.dirty.size() + names.size() > hub.maxDirtyNames()) {
                            ts.full = true;
                            ts.dirty.clear();
                        } else {
                            ts.dirty.addAll(names);
                        }
                        noted = true;
                    } else {
                        for (String n : names) {
                            if (ts.names.contains(n)) {
                                ts.dirty.add(n);
                                noted = true;
                            }
                        }
                    }
                } else if (names != null) {
                    noted = true;
                }
            } else if (waypointInputs) {
                ts.full = true;
                noted = true;
            }
            if (noted && ts.changedSince == 0) {
                ts.changedSince = since;
            }
            flush(ts);
        }
    }

    synchronized void flushAll() {
        for (TypeState ts : types.values()) {
            flush(ts);
        }
    }

    private void flush(TypeState ts) {
        if (closed || ts.pendingNonce != null) {
            return;
        }
        if (!ts.initialSent && !hub.synced()) {
            // Never answer from an incomplete model: a reconnecting client would drop what it holds.
            hub.waitForSync(this);
            return;
        }
        if (ts.initialSent && !ts.full && ts.dirty.isEmpty() && ts.justSubscribed.isEmpty()) {
            return;
        }
        MeshSnapshot snap = hub.latest();
        Map<String, Entry> visible = scope.visible(ts.typeUrl, snap);
        List<Resource> resources = new ArrayList<>();
        List<String> removed = new ArrayList<>();
        // A response is cut at max-response-bytes (clients' gRPC limit is 4 MiB by default); the
        // rest follows in the next response, after this one's ACK.
        Budget budget = new Budget(hub.maxResponseBytes());
        if (ts.full || !ts.initialSent) {
            for (Iterator<String> it = ts.held.keySet().iterator(); it.hasNext();) {
                String n = it.next();
                if (!visible.containsKey(n) || !(ts.wildcard || ts.names.contains(n))) {
                    it.remove();
                    removed.add(n);
                }
            }
            Iterable<Entry> wanted = ts.wildcard ? visible.values()
                    : () -> ts.names.stream().map(visible::get).filter(e -> e != null).iterator();
            for (Entry e : wanted) {
                if (budget.spent()) {
                    break;
                }
                offer(ts, e, resources, budget);
            }
        } else {
            for (Iterator<String> it = ts.dirty.iterator(); it.hasNext() && !budget.spent();) {
                String n = it.next();
                it.remove();
                Entry e = visible.get(n);
                if (e != null && (ts.wildcard || ts.names.contains(n))) {
                    offer(ts, e, resources, budget);
                } else if (ts.held.remove(n) != null) {
                    removed.add(n);
                }
            }
        }
        for (String n : ts.justSubscribed) {
            // An explicit subscription to something that does not exist is answered as removed.
            if (!ts.held.containsKey(n) && visible.get(n) == null && !removed.contains(n)) {
                removed.add(n);
            }
        }
        ts.justSubscribed.clear();
        if (budget.spent()) {
            LOG.debugf("xds: response to %s type=%s cut at %d resources; the rest follows after its ACK", id,
                    DiscoveryMetrics.shortType(ts.typeUrl), resources.size());
        } else {
            ts.dirty.clear();
            ts.full = false;
        }
        boolean initial = !ts.initialSent;
        if (!initial && resources.isEmpty() && removed.isEmpty()) {
            ts.changedSince = 0;
            return;
        }
        String nonce = hub.nextNonce();
        DeltaDiscoveryResponse resp = DeltaDiscoveryResponse.newBuilder().setTypeUrl(ts.typeUrl)
                .setSystemVersionInfo(Long.toString(snap.generation())).setNonce(nonce).addAllResources(resources)
                .addAllRemovedResources(removed).build();
        ts.initialSent = true;
        ts.pendingNonce = nonce;
        ts.lastSentNonce = nonce;
        ts.pendingSentAtMillis = System.currentTimeMillis();
        ts.pushes++;
        ts.resourcesSent += resources.size();
        ts.removalsSent += removed.size();
        hub.metrics().pushed(ts.typeUrl);
        if (!initial && ts.changedSince != 0) {
            hub.metrics().converged(System.nanoTime() - ts.changedSince);
        }
        ts.changedSince = 0;
        if (LOG.isDebugEnabled()) {
            LOG.debugf("xds: push to %s type=%s nonce=%s: %d resources, %d removed%s", id,
                    DiscoveryMetrics.shortType(ts.typeUrl), nonce, resources.size(), removed.size(),
                    initial ? " (initial)" : "");
        }
        out.emit(resp);
    }

    private void offer(TypeState ts, Entry e, List<Resource> resources, Budget budget) {
        if (!e.version().equals(ts.held.get(e.name()))) {
            Resource r = hub.resource(ts.typeUrl, e);
            resources.add(r);
            budget.spend(r.getSerializedSize() + 5);
            ts.held.put(e.name(), e.version());
        }
    }

    /** Bytes left for one response. */
    private static final class Budget {
        private long left;

        Budget(long bytes) {
            left = bytes;
        }

        void spend(long n) {
            left -= n;
        }

        boolean spent() {
            return left <= 0;
        }
    }

    // ---- lifecycle ----------------------------------------------------------------------------

    synchronized void onInboundFailure(Throwable t) {
        LOG.debugf("xds: stream %s ended: %s", id, t.toString());
        close();
        out.complete();
    }

    synchronized void onInboundCompleted() {
        close();
        out.complete();
    }

    private void fail(Status status) {
        close();
        out.fail(status.asRuntimeException());
    }

    synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (node != null) {
            hub.unregister(this);
            LOG.infof("xds: %s disconnected", id);
        }
    }

    /** Server shutdown: end the stream so that clients reconnect elsewhere. */
    synchronized void shutdown() {
        close();
        out.complete();
    }

    // ---- debug --------------------------------------------------------------------------------

    synchronized Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", id);
        m.put("nodeId", node.getId());
        m.put("nodeName", node.getNodeName());
        m.put("role", roleTag());
        if (node.getRole() == Node.Role.WAYPOINT) {
            m.put("gateway", node.getGateway());
        }
        m.put("scope", scope.describe());
        m.put("caller", caller.toString());
        m.put("peer", peer);
        m.put("connectedAt", java.time.Instant.ofEpochMilli(connectedAtMillis).toString());
        Map<String, Object> t = new LinkedHashMap<>();
        for (TypeState ts : types.values()) {
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("wildcard", ts.wildcard);
            if (!ts.wildcard) {
                s.put("subscribed", ts.names.size());
            }
            s.put("resources", ts.held.size());
            s.put("lastSentNonce", ts.lastSentNonce);
            s.put("lastAckedNonce", ts.lastAckedNonce);
            s.put("awaitingAck", ts.pendingNonce);
            s.put("pendingChanges", ts.full ? "all" : Integer.toString(ts.dirty.size()));
            s.put("pushes", ts.pushes);
            s.put("resourcesSent", ts.resourcesSent);
            s.put("removalsSent", ts.removalsSent);
            s.put("acks", ts.acks);
            s.put("nacks", ts.nacks);
            if (ts.lastNack != null) {
                s.put("lastNack", ts.lastNack);
            }
            t.put(ts.typeUrl, s);
        }
        m.put("types", t);
        return m;
    }
}
