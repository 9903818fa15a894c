package dev.ambient.xds.discovery;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Clause;
import dev.ambient.proto.workload.Match;
import dev.ambient.proto.workload.Rule;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.Workload;
import dev.ambient.xds.model.MeshSnapshot;
import io.grpc.ManagedChannel;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The control plane's scale benchmark (not part of the normal test run): the real gRPC server in
 * process, 100 real client streams (one channel each, as 100 ztunnels), a synthesised mesh of
 * 10,000 pods in 500 services with 200 L4 policies. Measures the time from a snapshot change (one
 * pod changed) to the push reaching all 100 clients, the resources each client receives per
 * change, the bytes per workload on the wire and one client's initial sync.
 *
 * <p>Run it with {@code integration-tests/bench/xds-scale.sh}, which passes {@code -Dxds.bench=true};
 * sizes can be changed with {@code -Dxds.bench.pods=... -Dxds.bench.services=...
 * -Dxds.bench.policies=... -Dxds.bench.clients=... -Dxds.bench.changes=...}. The report is
 * printed and written to {@code target/xds-scale-bench.txt}.
 */
@QuarkusTest
@TestProfile(ScaleBenchmark.Profile.class)
@Tag("benchmark")
@EnabledIfSystemProperty(named = "xds.bench", matches = "true")
class ScaleBenchmark {

    /** The test model, with the production settings of the discovery server. */
    public static class Profile extends DiscoveryTestProfile {
        @Override
        public java.util.Map<String, String> getConfigOverrides() {
            java.util.Map<String, String> m = new java.util.HashMap<>(super.getConfigOverrides());
            m.remove("xds.discovery.max-response-bytes");
            return m;
        }
    }

    static final int PODS = Integer.getInteger("xds.bench.pods", 10_000);
    static final int SERVICES = Integer.getInteger("xds.bench.services", 500);
    static final int POLICIES = Integer.getInteger("xds.bench.policies", 200);
    static final int CLIENTS = Integer.getInteger("xds.bench.clients", 100);
    static final int CHANGES = Integer.getInteger("xds.bench.changes", 50);
    static final int WARMUP = Integer.getInteger("xds.bench.warmup", 10);
    static final int NODES = 100;
    static final int NAMESPACES = 50;

    static final double GOAL_MS = 100;
    static final double GOAL_BYTES = 300;

    @Inject
    MutableMeshModel model;

    @Inject
    DiscoveryHub hub;

    @Inject
    io.micrometer.core.instrument.MeterRegistry registry;

    /** 10,000 pods in 500 services over 50 namespaces and 100 nodes, 200 policies, 1 peer authentication. */
    static List<Message> mesh() {
        List<Message> out = new ArrayList<>();
        for (int s = 0; s < SERVICES; s++) {
            String ns = "ns-" + (s % NAMESPACES);
            out.add(Fixtures.service(ns, "svc-" + s, s, null));
        }
        for (int p = 0; p < PODS; p++) {
            int s = p % SERVICES;
            String ns = "ns-" + (s % NAMESPACES);
            String pod = "svc-" + s + "-" + Integer.toHexString(0x5f00000 + p) + "-x7k2p";
            out.add(Fixtures.workload(ns, pod, "svc-" + s, p, "node-" + (p % NODES)));
        }
        for (int a = 0; a < POLICIES; a++) {
            String ns = "ns-" + (a % NAMESPACES);
            out.add(Authorization.newBuilder().setName("policy-" + a).setNamespace(ns)
                    .setScope(a % 4 == 0 ? Scope.NAMESPACE : Scope.WORKLOAD_SELECTOR)
                    .setAction(a % 5 == 0 ? Action.DENY : Action.ALLOW)
                    .addAllSelectedWorkloads(a % 4 == 0 ? List.of() : List.of(Fixtures.uid(ns, "svc-" + a + "-0")))
                    .addRules(Rule.newBuilder().addClauses(Clause.newBuilder().addMatches(Match.newBuilder()
                            .addPrincipals(StringMatch.newBuilder().setExact("cluster.local/ns/" + ns + "/sa/client"))
                            .addDestinationPorts(8080))))
                    .build());
        }
        out.add(Fixtures.peerAuthentication("istio-system", "default"));
        return out;
    }

    /** A client of the benchmark: ACKs everything, counts what it receives. */
    static final class Probe {
        final XdsTestClient client;
        final CountDownLatch synced = new CountDownLatch(1);
        final AtomicInteger syncedResources = new AtomicInteger();
        final AtomicInteger resourcesSinceMark = new AtomicInteger();
        final AtomicInteger responsesSinceMark = new AtomicInteger();
        final AtomicLong bytes = new AtomicLong();
        volatile String watchName;
        volatile String watchVersion;
        volatile long arrivedNanos;
        volatile CountDownLatch arrived;

        Probe(int i, ManagedChannel channel) {
            client = XdsTestClient.ztunnel("bench-" + i, channel, this::onResponse);
        }

        private void onResponse(DeltaDiscoveryResponse r) {
            long now = System.nanoTime();
            bytes.addAndGet(r.getSerializedSize());
            if (synced.getCount() > 0) {
                // Large responses are cut (xds.discovery.max-response-bytes): count resources, not responses.
                if (syncedResources.addAndGet(r.getResourcesCount()) >= PODS + SERVICES + POLICIES + 1) {
                    synced.countDown();
                }
                return;
            }
            resourcesSinceMark.addAndGet(r.getResourcesCount() + r.getRemovedResourcesCount());
            responsesSinceMark.incrementAndGet();
            String name = watchName;
            for (Resource res : r.getResourcesList()) {
                if (res.getName().equals(name) && res.getVersion().equals(watchVersion)) {
                    arrivedNanos = now;
                    arrived.countDown();
                }
            }
        }

        void subscribe() {
            ResourceTypes.ZTUNNEL_TYPES.forEach(client::subscribe);
        }
    }

    @Test
    void benchmark() throws Exception {
        StringBuilder report = new StringBuilder();
        List<Message> world = mesh();
        MeshSnapshot snap = model.set(world);
        await(() -> hub.latest() == snap);
        line(report, "xds scale benchmark: %d pods, %d services, %d policies, %d clients, %d changes (after %d warm-up)",
                PODS, SERVICES, POLICIES, CLIENTS, CHANGES, WARMUP);
        line(report, "cores: %d, max heap: %d MiB", Runtime.getRuntime().availableProcessors(),
                Runtime.getRuntime().maxMemory() >> 20);

        // --- initial sync of one client (cold: resources packed for the first time; then warm).
        double[] coldSync = initialSync();
        double[] warmSync = initialSync();
        line(report, "initial sync, one client (cold): %.1f ms, %.2f MiB in %d responses (workloads %.2f MiB)",
                coldSync[0], coldSync[1] / (1 << 20), (int) coldSync[7], coldSync[2] / (1 << 20));
        line(report, "initial sync, one client (warm): %.1f ms, %.2f MiB", warmSync[0], warmSync[1] / (1 << 20));
        line(report, "bytes per workload (serialized Resource, average): %.1f = Workload message %.1f + envelope"
                + " (name %.1f, version %.1f, Any type URL %d, tags/lengths)", warmSync[3], warmSync[4], warmSync[5],
                warmSync[6], ResourceTypes.WORKLOAD.length());
        // On the wire: what the client's gRPC stack received for the whole initial sync (gzip, when the
        // server compresses), spread over the workloads: the envelope's repetition compresses away.
        double bytesPerWorkload = warmSync[8] / PODS;
        line(report, "bytes per workload on the wire (initial sync received / %d pods): %.1f (%.2f MiB for %.2f MiB of messages)",
                PODS, bytesPerWorkload, warmSync[8] / (double) (1 << 20), warmSync[1] / (1 << 20));

        // --- 100 clients, all synced.
        List<Probe> probes = new ArrayList<>();
        List<ManagedChannel> channels = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int i = 0; i < CLIENTS; i++) {
            ManagedChannel ch = XdsTestClient.channel();
            channels.add(ch);
            Probe p = new Probe(i, ch);
            probes.add(p);
            p.subscribe();
        }
        for (Probe p : probes) {
            assertTrue(p.synced.await(120, TimeUnit.SECONDS), "client did not sync");
        }
        double allSyncMs = (System.nanoTime() - t0) / 1e6;
        long syncBytes = probes.stream().mapToLong(p -> p.bytes.get()).sum();
        line(report, "initial sync of %d clients at once: %.0f ms, %.1f MiB sent", CLIENTS, allSyncMs,
                syncBytes / (double) (1 << 20));
        Thread.sleep(500);

        // --- one pod changes, CHANGES times.
        Random rnd = new Random(42);
        List<Message> current = new ArrayList<>(world);
        List<Integer> workloadIdx = new ArrayList<>();
        for (int i = 0; i < current.size(); i++) {
            if (current.get(i) instanceof Workload) {
                workloadIdx.add(i);
            }
        }
        double[] allClients = new double[CHANGES];
        double[] perClient = new double[CHANGES * CLIENTS];
        int maxResources = 0;
        int minResources = Integer.MAX_VALUE;
        long extraResponses = 0;
        int missing = 0;
        io.micrometer.core.instrument.DistributionSummary conv = null;
        double convTotal0 = 0;
        long convCount0 = 0;
        for (int k = -WARMUP; k < CHANGES; k++) {
            if (k == 0) {
                conv = registry.find("pilot_proxy_convergence_time").summary();
                convTotal0 = conv.totalAmount();
                convCount0 = conv.count();
            }
            int idx = workloadIdx.get(rnd.nextInt(workloadIdx.size()));
            Workload w = (Workload) current.get(idx);
            Workload changed = w.toBuilder().setCanonicalRevision("rev-" + (k + WARMUP)).build();
            current.set(idx, changed);
            MeshSnapshot s = model.build(current);
            String version = s.resources(ResourceTypes.WORKLOAD).get(changed.getUid()).version();
            CountDownLatch arrived = new CountDownLatch(CLIENTS);
            for (Probe p : probes) {
                p.resourcesSinceMark.set(0);
                p.responsesSinceMark.set(0);
                p.watchName = changed.getUid();
                p.watchVersion = version;
                p.arrived = arrived;
            }
            long start = System.nanoTime();
            model.publish(s);
            boolean all = arrived.await(10, TimeUnit.SECONDS);
            Thread.sleep(50); // let anything else that would be sent arrive, to be counted
            if (k < 0) {
                continue;
            }
            if (!all) {
                missing += (int) arrived.getCount();
            }
            long last = 0;
            for (int c = 0; c < CLIENTS; c++) {
                Probe p = probes.get(c);
                last = Math.max(last, p.arrivedNanos);
                perClient[k * CLIENTS + c] = (p.arrivedNanos - start) / 1e6;
                maxResources = Math.max(maxResources, p.resourcesSinceMark.get());
                minResources = Math.min(minResources, p.resourcesSinceMark.get());
                extraResponses += p.responsesSinceMark.get() - 1;
            }
            allClients[k] = (last - start) / 1e6;
        }
        Arrays.sort(allClients);
        Arrays.sort(perClient);
        line(report, "one pod changed -> push reached all %d clients: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                CLIENTS, pct(allClients, 50), pct(allClients, 99), allClients[allClients.length - 1]);
        line(report, "  per client delivery: p50 %.1f ms, p99 %.1f ms", pct(perClient, 50), pct(perClient, 99));
        line(report, "  server side (snapshot in -> response handed to gRPC, pilot_proxy_convergence_time): mean %.2f ms over %d pushes",
                (conv.totalAmount() - convTotal0) * 1000 / Math.max(1, conv.count() - convCount0),
                conv.count() - convCount0);
        line(report, "resources sent per client per pod change: min %d, max %d (extra responses: %d, missed: %d)",
                minResources, maxResources, extraResponses, missing);

        line(report, "");
        line(report, "goal: push to all clients < %.0f ms (p99) ............ %.1f ms  %s", GOAL_MS,
                pct(allClients, 99), pct(allClients, 99) < GOAL_MS && missing == 0 ? "PASS" : "MISS");
        line(report, "goal: O(1) resources per change (exactly 1) ........ %d..%d  %s", minResources, maxResources,
                minResources == 1 && maxResources == 1 && extraResponses == 0 ? "PASS" : "MISS");
        line(report, "goal: < %.0f bytes per workload ..................... %.1f  %s", GOAL_BYTES, bytesPerWorkload,
                bytesPerWorkload < GOAL_BYTES ? "PASS" : "MISS");
        line(report, "(initial sync: no goal set; one client %.1f ms / %.2f MiB warm)", warmSync[0],
                warmSync[1] / (1 << 20));

        for (Probe p : probes) {
            p.client.close();
        }
        channels.forEach(ManagedChannel::shutdownNow);
        String text = report.toString();
        System.out.println("\n" + text);
        Path out = Path.of(System.getProperty("xds.bench.report", "target/xds-scale-bench.txt"));
        try {
            Files.writeString(out, text);
        } catch (IOException e) {
            System.err.println("could not write " + out + ": " + e);
        }
        assertTrue(missing == 0, "some clients never received a change");
    }

    /** One client's initial sync: {ms, total bytes, workload response bytes, bytes per workload Resource, bytes per Workload}. */
    private double[] initialSync() throws InterruptedException {
        java.util.concurrent.atomic.AtomicLong wire = new java.util.concurrent.atomic.AtomicLong();
        ManagedChannel ch = XdsTestClient.countingChannel(wire);
        List<DeltaDiscoveryResponse> got = java.util.Collections.synchronizedList(new ArrayList<>());
        CountDownLatch done = new CountDownLatch(1);
        AtomicInteger count = new AtomicInteger();
        long start = System.nanoTime();
        XdsTestClient c = XdsTestClient.ztunnel("bench-initial", ch, r -> {
            got.add(r);
            if (count.addAndGet(r.getResourcesCount()) >= PODS + SERVICES + POLICIES + 1) {
                done.countDown();
            }
        });
        ResourceTypes.ZTUNNEL_TYPES.forEach(c::subscribe);
        assertTrue(done.await(60, TimeUnit.SECONDS), "initial sync did not complete");
        double ms = (System.nanoTime() - start) / 1e6;
        c.close();
        ch.shutdownNow();
        long total = 0;
        long wlBytes = 0;
        long perResource = 0;
        long perMessage = 0;
        long nameBytes = 0;
        long versionBytes = 0;
        int n = 0;
        for (DeltaDiscoveryResponse r : got) {
            total += r.getSerializedSize();
            if (r.getTypeUrl().equals(ResourceTypes.WORKLOAD)) {
                wlBytes += r.getSerializedSize();
                for (Resource res : r.getResourcesList()) {
                    perResource += res.getSerializedSize();
                    ByteString v = res.getResource().getValue();
                    perMessage += v.size();
                    nameBytes += res.getName().length();
                    versionBytes += res.getVersion().length();
                    n++;
                }
            }
        }
        return new double[] {ms, total, wlBytes, perResource / (double) n, perMessage / (double) n,
                nameBytes / (double) n, versionBytes / (double) n, got.size(), wire.get()};
    }

    private static double pct(double[] sorted, int p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    private static void line(StringBuilder sb, String fmt, Object... args) {
        sb.append(String.format(Locale.ROOT, fmt, args)).append('\n');
    }

    private static void await(java.util.function.BooleanSupplier cond) throws InterruptedException {
        long end = System.currentTimeMillis() + 30_000;
        while (!cond.getAsBoolean()) {
            if (System.currentTimeMillis() > end) {
                throw new AssertionError("timed out");
            }
            Thread.sleep(10);
        }
    }
}
