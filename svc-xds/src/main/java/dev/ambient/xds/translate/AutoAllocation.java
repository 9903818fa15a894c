package dev.ambient.xds.translate;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Istio's DNS auto-allocation: a ServiceEntry host without {@code addresses} (not a wildcard, not
 * resolution NONE) gets a virtual IPv4 address from {@value #RANGE}, which the ztunnel's DNS proxy
 * answers and its outbound path routes. Pure and deterministic, so every replica of the control
 * plane, before and after a restart, hands out the same addresses: a host's place is a hash of
 * {@code namespace/host}; on a collision the older resource (creation time, then key) keeps it and
 * the newer one takes the next free place.
 */
final class AutoAllocation {

    /** The range, as Istio's; 240.0.0.0/4 is reserved and never routed, so no real host is shadowed. */
    static final String RANGE = "240.240.0.0/16";
    private static final int SLOTS = 65534; // .0.0 and .255.255 stay unused

    /** One host that needs an address; {@code created} orders collisions (null or "" sorts last). */
    record Request(String namespace, String host, String created) {
        String key() {
            return namespace + "/" + host;
        }
    }

    private AutoAllocation() {
    }

    /**
     * @param taken addresses of the range already used explicitly by some service (4 raw bytes each)
     * @return key ({@code namespace/host}) to 4 raw bytes; a request left out when the range is full
     */
    static Map<String, byte[]> allocate(List<Request> requests, Set<Integer> taken) {
        List<Request> ordered = new ArrayList<>(requests);
        ordered.sort(Comparator.comparing((Request r) -> r.created() == null || r.created().isEmpty() ? "~" : r.created())
                .thenComparing(Request::key));
        Set<Integer> used = new HashSet<>(taken);
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (Request r : ordered) {
            if (out.containsKey(r.key())) {
                continue;
            }
            int slot = (int) Long.remainderUnsigned(fnv1a(r.key()), SLOTS);
            for (int tries = 0; tries < SLOTS; tries++) {
                int offset = 1 + (slot + tries) % SLOTS;
                if (used.add(offset)) {
                    out.put(r.key(), new byte[] {(byte) 240, (byte) 240, (byte) (offset >> 8), (byte) offset});
                    break;
                }
            }
        }
        return out;
    }

    /** The offset within the range of a raw IPv4 address in it, else -1. */
    static int offsetInRange(byte[] raw) {
        if (raw.length != 4 || (raw[0] & 0xff) != 240 || (raw[1] & 0xff) != 240) {
            return -1;
        }
        return ((raw[2] & 0xff) << 8) | (raw[3] & 0xff);
    }

    private static long fnv1a(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= (b & 0xff);
            h *= 0x100000001b3L;
        }
        return h;
    }
}
