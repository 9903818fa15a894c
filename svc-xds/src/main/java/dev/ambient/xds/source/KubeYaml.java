package dev.ambient.xds.source;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.ambient.xds.translate.KubeKind;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Kubernetes-style YAML as {@code kubectl apply -f} reads it: several documents per file
 * ({@code ---}), {@code kind: List} with items. Documents of the kinds the mesh uses become
 * fabric8 objects (typed built-ins; generic resources for the Istio and Gateway API kinds); other
 * kinds are handed to {@code ignored}. Namespaced objects without a namespace get "default".
 */
public final class KubeYaml {

    /** A document that cannot be read; the message says which and why. */
    public static final class Invalid extends Exception {
        public Invalid(String message) {
            super(message);
        }
    }

    private static final YAMLMapper YAML = new YAMLMapper();

    private KubeYaml() {
    }

    public static List<HasMetadata> parse(String text, Consumer<String> ignored) throws Invalid {
        List<HasMetadata> out = new ArrayList<>();
        int doc = 0;
        try (MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class).readValues(text)) {
            while (it.hasNextValue()) {
                JsonNode node = it.nextValue();
                doc++;
                add(node, "document " + doc, out, ignored);
            }
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr() + ", column "
                    + e.getLocation().getColumnNr();
            throw new Invalid("not valid YAML" + where + ": " + e.getOriginalMessage());
        } catch (IOException | RuntimeException e) {
            throw new Invalid("cannot be read: " + e.getMessage());
        }
        return out;
    }

    private static void add(JsonNode node, String where, List<HasMetadata> out, Consumer<String> ignored)
            throws Invalid {
        if (node == null || node.isNull() || node.isMissingNode()) {
            return; // an empty document
        }
        if (!(node instanceof ObjectNode obj)) {
            throw new Invalid(where + ": expected a Kubernetes object, got " + node.getNodeType());
        }
        String apiVersion = obj.path("apiVersion").asText(null);
        String kind = obj.path("kind").asText(null);
        if (apiVersion == null || kind == null || apiVersion.isEmpty() || kind.isEmpty()) {
            throw new Invalid(where + ": apiVersion and kind are required");
        }
        if (kind.equals("List") && apiVersion.equals("v1")) {
            JsonNode items = obj.path("items");
            for (int i = 0; i < items.size(); i++) {
                add(items.get(i), where + " items[" + i + "]", out, ignored);
            }
            return;
        }
        KubeKind k = KubeKind.of(apiVersion, kind).orElse(null);
        if (k == null) {
            ignored.accept(apiVersion + " " + kind);
            return;
        }
        String name = obj.path("metadata").path("name").asText("");
        if (name.isEmpty()) {
            throw new Invalid(where + " (" + kind + "): metadata.name is required");
        }
        Class<? extends HasMetadata> type = switch (k) {
            case NAMESPACE -> Namespace.class;
            case POD -> Pod.class;
            case SERVICE -> Service.class;
            case ENDPOINT_SLICE -> EndpointSlice.class;
            case CONFIG_MAP -> ConfigMap.class;
            default -> GenericKubernetesResource.class;
        };
        HasMetadata o;
        try {
            o = Serialization.unmarshal(obj.toString(), type);
        } catch (RuntimeException e) {
            throw new Invalid(where + " (" + kind + " " + name + "): " + rootMessage(e));
        }
        if (k.namespaced() && (o.getMetadata().getNamespace() == null || o.getMetadata().getNamespace().isEmpty())) {
            o.getMetadata().setNamespace("default");
        }
        out.add(o);
    }

    private static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        String m = c instanceof JsonProcessingException j ? j.getOriginalMessage() : c.getMessage();
        return m == null ? c.toString() : m;
    }
}
