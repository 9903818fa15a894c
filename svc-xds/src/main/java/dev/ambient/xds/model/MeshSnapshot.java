package dev.ambient.xds.model;

import com.google.protobuf.Message;
import dev.ambient.discovery.ResourceTypes;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

/**
 * Everything the control plane serves, at one moment: type URL -> resource name -> resource.
 * Immutable. A resource's version is a digest of its bytes, so an unchanged resource keeps its
 * version across recomputations and is never re-sent.
 */
public final class MeshSnapshot {

    /** One resource with its name and content version. */
    public record Entry(String name, String version, Message resource) {
    }

    public static final MeshSnapshot EMPTY = new MeshSnapshot(Map.of(), 0);

    private final Map<String, Map<String, Entry>> byType;
    private final long generation;

    private MeshSnapshot(Map<String, Map<String, Entry>> byType, long generation) {
        this.byType = byType;
        this.generation = generation;
    }

    /** Builds a snapshot from resources of any known types (named by {@link ResourceTypes#nameOf}). */
    public static MeshSnapshot of(Collection<? extends Message> resources, long generation) {
        Map<String, Map<String, Entry>> m = new HashMap<>();
        for (Message r : resources) {
            String type = "type.googleapis.com/" + r.getDescriptorForType().getFullName();
            String name = ResourceTypes.nameOf(r);
            m.computeIfAbsent(type, t -> new HashMap<>()).put(name, new Entry(name, version(r), r));
        }
        m.replaceAll((k, v) -> Map.copyOf(v));
        return new MeshSnapshot(Map.copyOf(m), generation);
    }

    /** The resources of one type, by name; empty if none. */
    public Map<String, Entry> resources(String typeUrl) {
        return byType.getOrDefault(typeUrl, Map.of());
    }

    public long generation() {
        return generation;
    }

    static String version(Message m) {
        // 64 bits of a content hash: equal bytes, equal version.
        byte[] bytes = m.toByteArray();
        long h = 0xcbf29ce484222325L;
        for (byte b : bytes) {
            h ^= (b & 0xff);
            h *= 0x100000001b3L;
        }
        return Long.toHexString(h);
    }
}
