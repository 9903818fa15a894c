package dev.ambient.cni.pods;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The Pods and Namespaces in Kubernetes-style YAML, read the way svc-xds reads its mesh directory
 * ({@code ---} separated documents, {@code kind: List}; a namespaced object without a namespace is
 * in "default"). Every other kind is skipped: the agent needs only these two.
 */
public final class PodYaml {

    /** A file that cannot be read; the message says where and why. */
    public static final class Invalid extends Exception {
        public Invalid(String message) {
            super(message);
        }
    }

    private static final YAMLMapper YAML = new YAMLMapper();

    private PodYaml() {
    }

    public static List<HasMetadata> parse(String text) throws Invalid {
        List<HasMetadata> out = new ArrayList<>();
        int doc = 0;
        try (MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class).readValues(text)) {
            while (it.hasNextValue()) {
                doc++;
                add(it.nextValue(), "document " + doc, out);
            }
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr();
            throw new Invalid("not valid YAML" + where + ": " + e.getOriginalMessage());
        } catch (IOException | RuntimeException e) {
            throw new Invalid("cannot be read: " + e.getMessage());
        }
        return out;
    }

    private static void add(JsonNode node, String where, List<HasMetadata> out) throws Invalid {
        if (node == null || node.isNull() || node.isMissingNode()) {
            return;
        }
        if (!(node instanceof ObjectNode obj)) {
            throw new Invalid(where + ": expected a Kubernetes object, got " + node.getNodeType());
        }
        String apiVersion = obj.path("apiVersion").asText("");
        String kind = obj.path("kind").asText("");
        if (apiVersion.isEmpty() || kind.isEmpty()) {
            throw new Invalid(where + ": apiVersion and kind are required");
        }
        if (kind.equals("List") && apiVersion.equals("v1")) {
            JsonNode items = obj.path("items");
            for (int i = 0; i < items.size(); i++) {
                add(items.get(i), where + " items[" + i + "]", out);
            }
            return;
        }
        if (!apiVersion.equals("v1") || !(kind.equals("Pod") || kind.equals("Namespace"))) {
            return;
        }
        String name = obj.path("metadata").path("name").asText("");
        if (name.isEmpty()) {
            throw new Invalid(where + " (" + kind + "): metadata.name is required");
        }
        try {
            Class<? extends HasMetadata> type = kind.equals("Pod") ? Pod.class : Namespace.class;
            HasMetadata o = Serialization.unmarshal(obj.toString(), type);
            if (o instanceof Pod p && (p.getMetadata().getNamespace() == null || p.getMetadata().getNamespace().isEmpty())) {
                p.getMetadata().setNamespace("default");
            }
            out.add(o);
        } catch (RuntimeException e) {
            throw new Invalid(where + " (" + kind + " " + name + "): " + e.getMessage());
        }
    }
}
