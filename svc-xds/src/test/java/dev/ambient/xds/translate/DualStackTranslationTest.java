package dev.ambient.xds.translate;

import static dev.ambient.xds.translate.MeshTranslatorTest.cidr;
import static dev.ambient.xds.translate.MeshTranslatorTest.get;
import static dev.ambient.xds.translate.MeshTranslatorTest.ip;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Match;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.xds.model.MeshSnapshot;
import dev.ambient.discovery.ResourceTypes;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A dual-stack pod, service and policy (src/test/resources/istio/dualstack.yaml): both families
 * reach the ztunnels, as the 4- and 16-byte addresses the Workload protos carry.
 */
class DualStackTranslationTest {

    @Test
    void podIpsClusterIpsAndIpBlocksOfBothFamiliesAreCarried() throws Exception {
        Translation t = MeshTranslatorTest.translate("dualstack.yaml");
        assertEquals(List.of(), t.problems());
        MeshSnapshot s = t.snapshot();

        Workload web = get(s, ResourceTypes.WORKLOAD, "Kubernetes//Pod/dual/web-0");
        assertEquals(List.of(ip("10.244.1.9"), ip("fd00:10:244:1::9")), web.getAddressesList());
        assertEquals(List.of(4, 16), web.getAddressesList().stream().map(b -> b.size()).toList());

        Service svc = get(s, ResourceTypes.SERVICE, "dual/web.dual.svc.cluster.local");
        assertEquals(List.of(ip("10.96.0.30"), ip("fd00:10:96::30")),
                svc.getAddressesList().stream().map(NetworkAddress::getAddress).toList(), "a VIP of each family");
        assertEquals(List.of("dual/web.dual.svc.cluster.local"), List.copyOf(web.getServicesMap().keySet()));

        Authorization policy = get(s, ResourceTypes.AUTHORIZATION, "dual/web-clients");
        assertEquals(Match.newBuilder().addSourceIps(cidr("fd00:10:244:1::", 64)).addSourceIps(cidr("10.244.1.0", 24))
                .addSourceIps(cidr("fd00:10:244:2::7", 128)).addNotSourceIps(cidr("fd00:10:244:1::66", 127)).build(),
                policy.getRules(0).getClauses(0).getMatches(0), "a single IPv6 address is a /128");
    }
}
