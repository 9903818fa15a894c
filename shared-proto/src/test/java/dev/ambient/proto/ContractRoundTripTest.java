package dev.ambient.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.Message;
import dev.ambient.proto.ca.Ca;
import dev.ambient.proto.ca.CertificateRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Discovery;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.proto.l7.L7;
import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RouteMatch;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Clause;
import dev.ambient.proto.workload.Match;
import dev.ambient.proto.workload.Rule;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadOuterClass;
import dev.ambient.proto.zds.AddWorkload;
import dev.ambient.proto.zds.WorkloadInfo;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.proto.zds.Zds;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Every contract message serialises and parses back to itself, with every field set. */
class ContractRoundTripTest {

    static final List<FileDescriptor> CONTRACTS = List.of(
            WorkloadOuterClass.getDescriptor(), L7.getDescriptor(), Discovery.getDescriptor(),
            Ca.getDescriptor(), Zds.getDescriptor());

    static Stream<Descriptor> everyMessageType() {
        List<Descriptor> all = new ArrayList<>();
        for (FileDescriptor file : CONTRACTS) {
            for (Descriptor d : file.getMessageTypes()) {
                collect(d, all);
            }
        }
        return all.stream();
    }

    private static void collect(Descriptor d, List<Descriptor> out) {
        if (d.getOptions().getMapEntry()) {
            return;
        }
        out.add(d);
        d.getNestedTypes().forEach(n -> collect(n, out));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("everyMessageType")
    void everyFieldSurvivesTheWire(Descriptor type) throws Exception {
        DynamicMessage filled = fill(type, 0);
        byte[] wire = filled.toByteArray();
        DynamicMessage parsed = DynamicMessage.parseFrom(type, wire);
        assertEquals(filled, parsed);
        // Oneofs keep one member; every other field must be present after the trip.
        for (FieldDescriptor f : type.getFields()) {
            if (f.getRealContainingOneof() == null) {
                assertTrue(f.isRepeated() ? parsed.getRepeatedFieldCount(f) > 0 : parsed.hasField(f),
                        type.getFullName() + "." + f.getName() + " lost on the wire");
            }
        }
    }

    private static DynamicMessage fill(Descriptor type, int depth) {
        DynamicMessage.Builder b = DynamicMessage.newBuilder(type);
        for (FieldDescriptor f : type.getFields()) {
            if (f.getRealContainingOneof() != null && f.getIndex() != f.getRealContainingOneof().getField(0).getIndex()) {
                continue;
            }
            if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE && depth > 3 && !f.isMapField()) {
                continue;
            }
            Object v = sample(f, depth);
            if (v == null) {
                continue;
            }
            if (f.isRepeated()) {
                b.addRepeatedField(f, v);
            } else {
                b.setField(f, v);
            }
        }
        return b.build();
    }

    private static Object sample(FieldDescriptor f, int depth) {
        return switch (f.getJavaType()) {
            case STRING -> f.getName() + "-value";
            case BYTE_STRING -> ByteString.copyFrom(new byte[] {10, 0, 0, (byte) f.getNumber()});
            case INT -> f.getNumber() + 1;
            case LONG -> (long) f.getNumber() + 100_000L;
            case BOOLEAN -> true;
            case DOUBLE -> 12.5;
            case FLOAT -> 1.5f;
            case ENUM -> f.getEnumType().getValues().get(f.getEnumType().getValues().size() - 1);
            case MESSAGE -> {
                if (f.getMessageType().getFullName().equals("google.protobuf.Any")) {
                    yield DynamicMessage.newBuilder(f.getMessageType())
                            .mergeFrom(Any.pack(sampleWorkload()))
                            .build();
                }
                yield fill(f.getMessageType(), depth + 1);
            }
        };
    }

    static Workload sampleWorkload() {
        return Workload.newBuilder()
                .setUid("cluster1//Pod/shop/cart-7d9f")
                .setName("cart-7d9f")
                .setNamespace("shop")
                .addAddresses(ByteString.copyFrom(new byte[] {10, 1, 0, 7}))
                .setServiceAccount("cart")
                .setNode("node-a")
                .setTunnelProtocol(TunnelProtocol.HBONE)
                .setTrustDomain("cluster.local")
                .build();
    }

    @Test
    void workloadStaysSmallOnTheWire() {
        // DESIGN.md: a workload is a handful of fields; the control plane's budget is < 300 bytes.
        Workload w = sampleWorkload().toBuilder().setCanonicalName("cart").setCanonicalRevision("v1").build();
        assertTrue(w.getSerializedSize() < 300, "workload is " + w.getSerializedSize() + " bytes");
    }

    @Test
    void discoveryResponseCarriesTypedResources() throws Exception {
        DeltaDiscoveryResponse resp = DeltaDiscoveryResponse.newBuilder()
                .setTypeUrl("type.googleapis.com/ambient.v1.Workload")
                .setNonce("n1")
                .addResources(Resource.newBuilder().setName("cluster1//Pod/shop/cart-7d9f").setVersion("3")
                        .setResource(Any.pack(sampleWorkload())))
                .addRemovedResources("cluster1//Pod/shop/old")
                .build();
        DeltaDiscoveryResponse back = DeltaDiscoveryResponse.parseFrom(resp.toByteArray());
        assertEquals(sampleWorkload(), back.getResources(0).getResource().unpack(Workload.class));
        assertEquals("type.googleapis.com/ambient.v1.Workload", back.getResources(0).getResource().getTypeUrl());
        assertEquals(List.of("cluster1//Pod/shop/old"), back.getRemovedResourcesList());

        DeltaDiscoveryRequest nack = DeltaDiscoveryRequest.newBuilder().setResponseNonce("n1")
                .setErrorDetail(dev.ambient.proto.discovery.Status.newBuilder().setCode(3).setMessage("bad"))
                .build();
        assertTrue(DeltaDiscoveryRequest.parseFrom(nack.toByteArray()).hasErrorDetail());
    }

    @Test
    void policyAndRoutesRoundTrip() throws Exception {
        Authorization deny = Authorization.newBuilder().setName("deny-legacy").setNamespace("shop")
                .setAction(dev.ambient.proto.workload.Action.DENY)
                .addRules(Rule.newBuilder().addClauses(Clause.newBuilder().addMatches(Match.newBuilder()
                        .addNamespaces(StringMatch.newBuilder().setExact("legacy")).addDestinationPorts(8080))))
                .build();
        assertEquals(deny, Authorization.parseFrom(deny.toByteArray()));

        ServiceRoutes split = ServiceRoutes.newBuilder().setServiceHostname("reviews.shop.svc.cluster.local")
                .addRoutes(Route.newBuilder()
                        .addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder().setValue("/api")))
                        .addBackends(WeightedBackend.newBuilder().setService("shop/reviews-v1").setPort(80).setWeight(90))
                        .addBackends(WeightedBackend.newBuilder().setService("shop/reviews-v2").setPort(80).setWeight(10)))
                .build();
        assertEquals(split, ServiceRoutes.parseFrom(split.toByteArray()));
    }

    @Test
    void zdsAddAndCertificateRequestRoundTrip() throws Exception {
        WorkloadRequest add = WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid("pod-uid-1")
                .setWorkloadInfo(WorkloadInfo.newBuilder().setName("cart").setNamespace("shop").setServiceAccount("cart")))
                .build();
        WorkloadRequest back = WorkloadRequest.parseDelimitedFrom(new java.io.ByteArrayInputStream(delimited(add)));
        assertEquals(WorkloadRequest.PayloadCase.ADD, back.getPayloadCase());
        assertEquals("shop", back.getAdd().getWorkloadInfo().getNamespace());

        CertificateRequest csr = CertificateRequest.newBuilder().setCsr("-----BEGIN CERTIFICATE REQUEST-----")
                .setValiditySeconds(86400).putMetadata("impersonated-identity", "spiffe://cluster.local/ns/shop/sa/cart")
                .build();
        CertificateRequest csrBack = CertificateRequest.parseFrom(csr.toByteArray());
        assertEquals(csr, csrBack);
        assertFalse(csrBack.getMetadataMap().isEmpty());
    }

    private static byte[] delimited(Message m) throws java.io.IOException {
        var out = new java.io.ByteArrayOutputStream();
        m.writeDelimitedTo(out);
        return out.toByteArray();
    }
}
