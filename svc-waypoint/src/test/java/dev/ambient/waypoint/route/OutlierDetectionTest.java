package dev.ambient.waypoint.route;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.OutlierDetection;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Envoy's consecutive-errors outlier detection as a DestinationRule configures it: nothing without
 * one; 5xx and gateway errors counted apart (a 500 is no gateway error); a good answer ends a
 * streak; at most the configured share of endpoints out, though one always may be; the ejection
 * time rounded up to the interval and growing with each ejection.
 */
class OutlierDetectionTest {

    static List<Endpoint> endpoints(int n) throws Exception {
        List<Endpoint> out = new ArrayList<>();
        for (int i = 1; i <= n; i++) {
            Workload w = Workload.newBuilder().setUid("pod-" + i).setName("pod-" + i).setNamespace("ns")
                    .addAddresses(ByteString.copyFrom(InetAddress.getByName("127.0.0." + i).getAddress())).build();
            out.add(new Endpoint(w, InetAddress.getByName("127.0.0." + i), 80));
        }
        return out;
    }

    static OutlierDetection.Builder rule() {
        return OutlierDetection.newBuilder().setConsecutive5XxErrors(5).setIntervalMs(10_000).setBaseEjectionMs(30_000)
                .setMaxEjectionPercent(10).setSource("ns/dr");
    }

    @Test
    void nothingIsEjectedWithoutADestinationRule() throws Exception {
        LoadBalancer lb = new LoadBalancer(LoadBalancer.Policy.ROUND_ROBIN);
        List<Endpoint> eps = endpoints(2);
        for (int i = 0; i < 100; i++) {
            lb.outcome(eps.get(0), eps, null, 0, "connect refused");
            lb.outcome(eps.get(0), eps, null, 503, "status 503");
        }
        assertFalse(lb.ejected("pod-1"));
    }

    @Test
    void fiveXxAndGatewayErrorsAreCountedApart() throws Exception {
        LoadBalancer lb = new LoadBalancer(LoadBalancer.Policy.ROUND_ROBIN);
        List<Endpoint> eps = endpoints(2);
        OutlierDetection gatewayOnly = rule().setConsecutive5XxErrors(0).setConsecutiveGatewayErrors(2)
                .setMaxEjectionPercent(100).build();
        for (int i = 0; i < 10; i++) {
            lb.outcome(eps.get(0), eps, gatewayOnly, 500, "status 500");
        }
        assertFalse(lb.ejected("pod-1"), "a 500 is no gateway error");
        lb.outcome(eps.get(0), eps, gatewayOnly, 502, "status 502");
        lb.outcome(eps.get(0), eps, gatewayOnly, 200, "status 200");
        lb.outcome(eps.get(0), eps, gatewayOnly, 503, "status 503");
        assertFalse(lb.ejected("pod-1"), "a good answer ended the streak");
        lb.outcome(eps.get(0), eps, gatewayOnly, 0, "reset");
        assertTrue(lb.ejected("pod-1"), "a local failure counts as a gateway error");

        OutlierDetection fiveXx = rule().setConsecutive5XxErrors(3).setMaxEjectionPercent(100).build();
        for (int i = 0; i < 3; i++) {
            lb.outcome(eps.get(1), eps, fiveXx, 500, "status 500");
        }
        assertTrue(lb.ejected("pod-2"));
    }

    @Test
    void atMostTheShareIsEjectedButOneAlwaysMayBe() throws Exception {
        LoadBalancer lb = new LoadBalancer(LoadBalancer.Policy.ROUND_ROBIN);
        List<Endpoint> eps = endpoints(3);
        OutlierDetection od = rule().setConsecutive5XxErrors(1).build(); // 10 % of 3 is no endpoint at all
        lb.outcome(eps.get(0), eps, od, 503, "status 503");
        lb.outcome(eps.get(1), eps, od, 503, "status 503");
        assertTrue(lb.ejected("pod-1"), "one may always be ejected (Envoy)");
        assertFalse(lb.ejected("pod-2"), "a second would be over 10 %");
        assertEquals("pod-3", lb.pick("svc", eps, Set.of("pod-2")).uid(), "the ejected one is skipped");
    }

    @Test
    void anEjectionLastsTheBaseTimeRoundedUpToTheIntervalAndGrows() throws Exception {
        LoadBalancer lb = new LoadBalancer(LoadBalancer.Policy.ROUND_ROBIN);
        List<Endpoint> eps = endpoints(1);
        OutlierDetection od = rule().setConsecutive5XxErrors(1).setIntervalMs(300).setBaseEjectionMs(200)
                .setMaxEjectionPercent(100).build();
        long t0 = System.nanoTime();
        lb.outcome(eps.get(0), eps, od, 503, "status 503");
        assertTrue(lb.ejected("pod-1"));
        while (lb.ejected("pod-1")) {
            Thread.sleep(5);
        }
        long first = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(first >= 290 && first < 2_000, "200 ms rounded up to the 300 ms interval: " + first);
        t0 = System.nanoTime();
        lb.outcome(eps.get(0), eps, od, 503, "status 503");
        while (lb.ejected("pod-1")) {
            Thread.sleep(5);
        }
        long second = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(second >= 590 && second < 3_000, "twice the base (400 ms) rounded up to 600 ms: " + second);
    }
}
