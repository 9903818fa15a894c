package dev.ambient.cni.enrol;

import dev.ambient.cni.metrics.CniMetrics;
import dev.ambient.cni.netns.PodNetnsLocator;
import dev.ambient.cni.pods.PodSource;
import dev.ambient.cni.redirect.HostProbeSnat;
import dev.ambient.cni.redirect.InPodRedirection;
import dev.ambient.cni.zds.ZdsServer;
import dev.ambient.net.NetworkNamespace;
import dev.ambient.proto.zds.WorkloadInfo;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodIP;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * The enrolment state of this node and the one thread that changes it. Two ways in: the CNI
 * plugin (a pod sandbox being created or torn down, with its netns path) and the pod source (a
 * namespace labelled or unlabelled, a pod gone, an agent restart: pods found running are located
 * by IP). Enrolling = rules installed in the pod's netns, then the netns handed to the ztunnel;
 * leaving = rules removed, then Del to the ztunnel.
 *
 * <p>All state changes, iptables commands and netns visits run on one platform thread (setns moves
 * only the calling thread), so decisions never interleave; waiting for the ztunnel's ack does not
 * hold that thread.
 */
public final class Enroller implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Enroller.class);

    /** Pods enrolled through CNI stay enrolled this long even if the source does not show them yet. */
    static final Duration SOURCE_LAG_GRACE = Duration.ofSeconds(30);

    private final String node;
    private final PodSource source;
    private final InPodRedirection redirection;
    private final HostProbeSnat probeSnat;
    private final PodNetnsLocator locator;
    private final ZdsServer zds;
    private final CniMetrics metrics;
    private final Duration ztunnelWait;
    private final Duration resyncInterval;
    private final ScheduledExecutorService executor;
    private final AtomicBoolean reconcilePending = new AtomicBoolean();
    private final Map<String, Enrolled> enrolled = new LinkedHashMap<>();
    private final Set<String> notFoundLogged = new HashSet<>();
    private volatile int enrolledCount;
    private boolean swept;

    /**
     * One enrolled pod. {@code netns} is the agent's own handle, so its rules can be removed even
     * after the pod's netns file is gone. {@code ready} completes once the ztunnel has the pod and
     * the rules are in: rules come only after the ztunnel's ack, so a pod is never captured while
     * nothing listens on 15001/15006 in it.
     */
    private static final class Enrolled {
        final String uid;
        final String namespace;
        final String name;
        final NetworkNamespace netns;
        final String trigger;
        final String reason;
        final List<String> ips;
        final long sinceNanos = System.nanoTime();
        final CompletableFuture<Void> ready = new CompletableFuture<>();

        Enrolled(String uid, String namespace, String name, NetworkNamespace netns, String trigger, String reason,
                List<String> ips) {
            this.ips = ips;
            this.uid = uid;
            this.namespace = namespace;
            this.name = name;
            this.netns = netns;
            this.trigger = trigger;
            this.reason = reason;
        }

        Path path() {
            return Path.of("/proc/" + ProcessHandle.current().pid() + "/fd/" + netns.fd());
        }

        String id() {
            return namespace + "/" + name;
        }
    }

    /** @param probeSnat the node's probe SNAT rules; null when the node does that itself (or in tests) */
    public Enroller(String node, PodSource source, InPodRedirection redirection, HostProbeSnat probeSnat,
            PodNetnsLocator locator, ZdsServer zds, CniMetrics metrics, Duration ztunnelWait, Duration resyncInterval) {
        this.node = node;
        this.source = source;
        this.redirection = redirection;
        this.probeSnat = probeSnat;
        this.locator = locator;
        this.zds = zds;
        this.metrics = metrics;
        this.ztunnelWait = ztunnelWait;
        this.resyncInterval = resyncInterval;
        this.executor = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("cni-enrol").daemon().factory());
        metrics.gauges(() -> enrolledCount, () -> zds.connected() ? 1 : 0);
    }

    public void start() {
        source.start(this::scheduleReconcile);
        long every = Math.max(100, resyncInterval.toMillis());
        executor.scheduleWithFixedDelay(this::reconcile, every, every, TimeUnit.MILLISECONDS);
    }

    private void scheduleReconcile() {
        if (reconcilePending.compareAndSet(false, true)) {
            executor.schedule(this::reconcile, 50, TimeUnit.MILLISECONDS);
        }
    }

    /** uid -> namespace/name of the pods enrolled now. */
    public Map<String, String> enrolled() {
        try {
            return executor.submit(() -> {
                Map<String, String> out = new LinkedHashMap<>();
                enrolled.values().forEach(e -> out.put(e.uid, e.id()));
                return out;
            }).get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    public boolean sourceSynced() {
        return source.synced();
    }

    /** Blocks (a virtual thread) until the pod source has its first full listing, at most {@code max}. */
    public boolean awaitSource(Duration max) throws InterruptedException {
        long end = System.nanoTime() + max.toNanos();
        while (!source.synced()) {
            if (System.nanoTime() > end) {
                return false;
            }
            Thread.sleep(20);
        }
        return true;
    }

    // --- the CNI plugin's requests ---

    public CompletableFuture<CniAnswer> cni(CniRequest r) {
        return switch (r.command()) {
            case "ADD" -> cniAdd(r);
            case "DEL" -> onLoop(() -> cniDel(r));
            case "CHECK" -> onLoop(() -> cniCheck(r));
            default -> CompletableFuture.completedFuture(CniAnswer.error("unknown command " + r.command()));
        };
    }

    /** The pod is looked up first, off the enrol thread (a slow API must not stall other pods). */
    private CompletableFuture<CniAnswer> cniAdd(CniRequest r) {
        return source.lookup(r.namespace(), r.name()).handle((found, ex) -> {
            if (ex != null) {
                Throwable cause = ex instanceof CompletionException && ex.getCause() != null ? ex.getCause() : ex;
                return CompletableFuture.completedFuture(CniAnswer.error("pod " + r.namespace() + "/" + r.name()
                        + ": " + cause.getMessage()));
            }
            return onLoop(() -> cniAdd(r, found)).thenCompose(f -> f);
        }).thenCompose(f -> f);
    }

    private CompletableFuture<CniAnswer> cniAdd(CniRequest r, PodSource.Lookup found) {
        Optional<Pod> pod = found.pod();
        if (pod.isEmpty()) {
            return CompletableFuture.completedFuture(CniAnswer.error("pod " + r.namespace() + "/" + r.name()
                    + " is not known to the agent (yet); try again"));
        }
        EnrolmentPolicy.Decision d = EnrolmentPolicy.decide(pod.get(), found.namespace(), node);
        if (!d.enrol()) {
            LOG.infof("CNI ADD %s/%s: not enrolled (%s)", r.namespace(), r.name(), d.reason());
            return CompletableFuture.completedFuture(CniAnswer.skip(d.reason()));
        }
        String uid = r.uid().isEmpty() ? pod.get().getMetadata().getUid() : r.uid();
        if (uid == null || uid.isEmpty()) {
            return CompletableFuture.completedFuture(CniAnswer.error("pod has no uid"));
        }
        CompletableFuture<Void> acked;
        try {
            List<String> ips = new ArrayList<>();
            r.ips().forEach(ip -> add(ips, ip));
            ips(pod.get()).forEach(ip -> add(ips, ip));
            acked = enrol(pod.get(), uid, Path.of(r.netns()), "cni", d.reason(), ips);
        } catch (IOException | RuntimeException e) {
            metrics.enrolment("add", "cni", false);
            return CompletableFuture.completedFuture(CniAnswer.error("cannot redirect pod " + r.namespace() + "/"
                    + r.name() + " in " + r.netns() + ": " + e.getMessage()));
        }
        return acked.orTimeout(ztunnelWait.toMillis(), TimeUnit.MILLISECONDS).handle((v, e) -> e)
                .thenCompose(e -> {
                    if (e == null) {
                        return CompletableFuture.completedFuture(
                                CniAnswer.ok("redirected and handed to the ztunnel"));
                    }
                    Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
                    String why = cause instanceof TimeoutException
                            ? "no ztunnel took the pod within " + ztunnelWait + (zds.connected() ? ""
                                    : " (no ztunnel connected on " + zds.socketPath() + ")")
                            : cause.getMessage();
                    // The sandbox will be torn down: leave nothing behind before answering.
                    return onLoop(() -> {
                        unenrol(uid, "CNI ADD failed: " + why, "cni");
                        return CniAnswer.error("pod " + r.namespace() + "/" + r.name() + " not enrolled: " + why);
                    });
                });
    }

    private CniAnswer cniDel(CniRequest r) {
        String uid = uidOf(r);
        if (uid != null && unenrol(uid, "CNI DEL", "cni")) {
            return CniAnswer.ok("removed");
        }
        return CniAnswer.skip("not enrolled");
    }

    private CniAnswer cniCheck(CniRequest r) throws IOException {
        String uid = uidOf(r);
        if (uid == null) {
            Optional<Pod> pod = source.pod(r.namespace(), r.name());
            if (pod.isPresent() && EnrolmentPolicy.decide(pod.get(), source.namespace(r.namespace()), node).enrol()) {
                return CniAnswer.error("pod should be enrolled but is not");
            }
            return CniAnswer.skip("not enrolled");
        }
        if (!enrolled.get(uid).ready.isDone() || !redirection.installed(enrolled.get(uid).path())) {
            return CniAnswer.error("redirection rules missing in the pod's network namespace");
        }
        return CniAnswer.ok("enrolled, rules in place");
    }

    /**
     * The enrolled pod a CNI request is about: by uid; by namespace and name only when the runtime
     * sent no uid (a DEL for an old pod must not remove a new pod that took its name).
     */
    private String uidOf(CniRequest r) {
        if (!r.uid().isEmpty()) {
            return enrolled.containsKey(r.uid()) ? r.uid() : null;
        }
        return enrolled.values().stream().filter(e -> e.namespace.equals(r.namespace()) && e.name.equals(r.name()))
                .map(e -> e.uid).findFirst().orElse(null);
    }

    // --- state changes (enrol thread only) ---

    private CompletableFuture<Void> enrol(Pod pod, String uid, Path netnsPath, String trigger, String reason,
            List<String> ips) throws IOException {
        Enrolled existing = enrolled.get(uid);
        NetworkNamespace mine = NetworkNamespace.open(netnsPath);
        if (existing != null) {
            if (existing.netns.inode() == mine.inode()) {
                mine.close();
                return existing.ready.copy();
            }
            unenrol(uid, "the pod has a new network namespace", trigger);
        }
        Enrolled e = new Enrolled(uid, pod.getMetadata().getNamespace(), pod.getMetadata().getName(), mine, trigger,
                reason, List.copyOf(ips));
        enrolled.put(uid, e);
        enrolledCount = enrolled.size();
        notFoundLogged.remove(uid);
        // Our rules in the pod mean a ztunnel took it before (they follow its ack): this agent
        // restarted, so the ztunnel is told Keep, not Add, and leaves the pod's listeners alone.
        boolean servedBefore = trigger.equals("watch") && redirection.installed(e.path());
        LOG.infof("enrolling %s (%s) via %s: %s; %s %s to the ztunnel", e.id(), uid, trigger, reason,
                servedBefore ? "already redirected, confirming" : "handing", netnsPath);
        zds.add(uid, info(pod), NetworkNamespace.open(e.path()), servedBefore)
                .whenComplete((v, ex) -> executor.execute(() -> afterAck(e, ex)));
        return e.ready.copy();
    }

    /** The ztunnel answered the Add (it stays unanswered while no ztunnel is connected). Enrol thread. */
    private void afterAck(Enrolled e, Throwable ex) {
        if (enrolled.get(e.uid) != e) {
            e.ready.completeExceptionally(new IOException("removed while waiting for the ztunnel"));
            return;
        }
        Throwable failure = ex;
        if (failure == null) {
            try {
                redirection.install(e.path());
                if (probeSnat != null) {
                    probeSnat.add(e.ips);
                }
                metrics.enrolment("add", e.trigger, true);
                LOG.infof("enrolled %s (%s): the ztunnel has it, rules in place", e.id(), e.uid);
                e.ready.complete(null);
                return;
            } catch (IOException | RuntimeException io) {
                failure = io;
            }
        }
        Throwable cause = failure instanceof CompletionException && failure.getCause() != null
                ? failure.getCause() : failure;
        metrics.enrolment("add", e.trigger, false);
        e.ready.completeExceptionally(cause);
        // Nothing redirected yet: the pod keeps talking directly; a resync tries again.
        unenrol(e.uid, "not enrolled: " + cause.getMessage(), e.trigger);
    }

    private boolean unenrol(String uid, String reason, String trigger) {
        Enrolled e = enrolled.remove(uid);
        if (e == null) {
            return false;
        }
        enrolledCount = enrolled.size();
        boolean ok = true;
        try {
            redirection.remove(e.path());
        } catch (IOException | RuntimeException ex) {
            ok = false;
            LOG.warnf("%s: removing rules failed (%s)", e.id(), ex.getMessage());
        }
        if (probeSnat != null) {
            try {
                probeSnat.remove(e.ips);
            } catch (IOException | RuntimeException ex) {
                ok = false;
                LOG.warnf("%s: removing the node's probe SNAT failed (%s)", e.id(), ex.getMessage());
            }
        }
        e.netns.close();
        e.ready.completeExceptionally(new IOException("removed from the mesh: " + reason));
        zds.del(uid).whenComplete((v, ex) -> {
            if (ex != null) {
                LOG.warnf("%s: the ztunnel did not confirm the removal: %s", e.id(), ex.getMessage());
            }
        });
        metrics.enrolment("remove", trigger, ok);
        LOG.infof("removed %s (%s) from the mesh: %s", e.id(), uid, reason);
        return true;
    }

    /** Brings the enrolment in line with the pod source. */
    void reconcile() {
        reconcilePending.set(false);
        if (!source.synced()) {
            return;
        }
        try {
            Map<String, Pod> onNode = new HashMap<>();
            Map<String, EnrolmentPolicy.Decision> decisions = new HashMap<>();
            for (Pod p : source.podsOn(node)) {
                String uid = p.getMetadata().getUid();
                if (uid == null || uid.isEmpty()) {
                    continue;
                }
                onNode.put(uid, p);
                decisions.put(uid, EnrolmentPolicy.decide(p, source.namespace(p.getMetadata().getNamespace()), node));
            }
            for (Enrolled e : new ArrayList<>(enrolled.values())) {
                EnrolmentPolicy.Decision d = decisions.get(e.uid);
                if (d == null) {
                    boolean young = e.trigger.equals("cni")
                            && System.nanoTime() - e.sinceNanos < SOURCE_LAG_GRACE.toNanos();
                    if (!young) {
                        unenrol(e.uid, "pod is gone", "watch");
                    }
                } else if (!d.enrol()) {
                    unenrol(e.uid, d.reason(), "watch");
                }
            }
            Map<String, Pod> wanted = new LinkedHashMap<>();
            Map<String, Pod> unwanted = new LinkedHashMap<>();
            onNode.forEach((uid, p) -> {
                if (decisions.get(uid).enrol() && !enrolled.containsKey(uid)) {
                    ips(p).forEach(ip -> wanted.put(ip, p));
                } else if (!swept && !decisions.get(uid).enrol()) {
                    ips(p).forEach(ip -> unwanted.put(ip, p));
                }
            });
            if (!swept) {
                sweepProbeSnat(onNode, decisions);
            }
            if (wanted.isEmpty() && unwanted.isEmpty()) {
                swept = true;
                zds.markSnapshotReady();
                return;
            }
            Set<String> lookFor = new HashSet<>(wanted.keySet());
            lookFor.addAll(unwanted.keySet());
            Map<String, Path> found = locator.locate(lookFor);
            Set<String> done = new HashSet<>();
            for (var w : wanted.entrySet()) {
                Pod p = w.getValue();
                String uid = p.getMetadata().getUid();
                if (done.contains(uid)) {
                    continue;
                }
                Path path = found.get(w.getKey());
                if (path == null) {
                    if (notFoundLogged.add(uid)) {
                        LOG.warnf("%s/%s should be enrolled but no network namespace on this node has %s; retrying",
                                p.getMetadata().getNamespace(), p.getMetadata().getName(), w.getKey());
                    }
                    continue;
                }
                done.add(uid);
                try {
                    enrol(p, uid, path, "watch", decisions.get(uid).reason(), ips(p));
                } catch (IOException | RuntimeException ex) {
                    metrics.enrolment("add", "watch", false);
                    LOG.warnf("%s/%s: cannot enrol: %s", p.getMetadata().getNamespace(), p.getMetadata().getName(),
                            ex.getMessage());
                }
            }
            if (!swept) {
                // After a restart: a pod left the mesh while no agent was running; its rules must go.
                for (var u : unwanted.entrySet()) {
                    Path path = found.get(u.getKey());
                    if (path != null && redirection.remove(path)) {
                        LOG.infof("removed stale rules from %s/%s (%s)", u.getValue().getMetadata().getNamespace(),
                                u.getValue().getMetadata().getName(), decisions.get(u.getValue().getMetadata().getUid())
                                        .reason());
                    }
                }
                swept = true;
            }
            zds.markSnapshotReady();
        } catch (IOException | RuntimeException e) {
            LOG.errorf(e, "reconcile failed; retrying in %s", resyncInterval);
        }
    }

    /**
     * First pass after a start: the node's probe SNAT rules left by the previous agent are kept
     * only for pods the mesh still wants on this node; the rest (pods that left while no agent
     * ran) go, and duplicates with them.
     */
    private void sweepProbeSnat(Map<String, Pod> onNode, Map<String, EnrolmentPolicy.Decision> decisions) {
        if (probeSnat == null) {
            return;
        }
        Set<String> keep = new HashSet<>();
        onNode.forEach((uid, p) -> {
            if (decisions.get(uid).enrol()) {
                keep.addAll(ips(p));
            }
        });
        enrolled.values().forEach(e -> keep.addAll(e.ips));
        try {
            probeSnat.retainOnly(keep);
        } catch (IOException | RuntimeException e) {
            LOG.warnf("cannot clear stale probe SNAT rules on the node: %s", e.getMessage());
        }
    }

    static List<String> ips(Pod p) {
        List<String> out = new ArrayList<>();
        if (p.getStatus() == null) {
            return out;
        }
        if (p.getStatus().getPodIPs() != null) {
            for (PodIP ip : p.getStatus().getPodIPs()) {
                add(out, ip.getIp());
            }
        }
        add(out, p.getStatus().getPodIP());
        return out;
    }

    private static void add(List<String> out, String ip) {
        if (ip == null || ip.isEmpty()) {
            return;
        }
        try {
            String norm = InetAddress.getByName(ip).getHostAddress();
            if (!out.contains(norm)) {
                out.add(norm);
            }
        } catch (IOException e) {
            LOG.debugf("not an IP address: %s", ip);
        }
    }

    private static WorkloadInfo info(Pod p) {
        String sa = p.getSpec() == null || p.getSpec().getServiceAccountName() == null ? "default"
                : p.getSpec().getServiceAccountName();
        return WorkloadInfo.newBuilder().setName(p.getMetadata().getName())
                .setNamespace(p.getMetadata().getNamespace()).setServiceAccount(sa).build();
    }

    interface Task<T> {
        T run() throws Exception;
    }

    private <T> CompletableFuture<T> onLoop(Task<T> task) {
        CompletableFuture<T> f = new CompletableFuture<>();
        executor.execute(() -> {
            try {
                f.complete(task.run());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }

    @Override
    public void close() {
        executor.shutdownNow();
        source.close();
        // Rules stay in the pods on purpose: a restarted agent takes them over, traffic keeps flowing.
        for (Enrolled e : enrolled.values()) {
            e.netns.close();
        }
    }
}
