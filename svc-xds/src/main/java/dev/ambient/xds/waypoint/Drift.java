package dev.ambient.xds.waypoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.Iterator;
import java.util.Map;

/**
 * Whether an object in the cluster still is what the controller wants: every field the controller
 * sets (labels, owner references, spec) must be present with the same value; fields the API server
 * or others add (defaults, status, clusterIP, replicas set by the autoscaler) are ignored. The
 * semantic of a server-side apply, without one (the mock API server has none).
 */
public final class Drift {

    private Drift() {
    }

    /** The first path where {@code actual} differs from {@code desired}, or null when it does not. */
    public static String find(HasMetadata desired, HasMetadata actual) {
        JsonNode want = managedView(Serialization.jsonMapper().valueToTree(desired));
        JsonNode have = Serialization.jsonMapper().valueToTree(actual);
        return firstDifference("", want, have);
    }

    private static JsonNode managedView(JsonNode full) {
        ObjectNode view = Serialization.jsonMapper().createObjectNode();
        ObjectNode meta = view.putObject("metadata");
        JsonNode m = full.path("metadata");
        for (String f : new String[] {"labels", "annotations", "ownerReferences"}) {
            if (!m.path(f).isMissingNode() && !m.path(f).isNull()) {
                meta.set(f, m.get(f));
            }
        }
        if (full.has("spec")) {
            view.set("spec", full.get("spec"));
        }
        return prune(view);
    }

    /** Drops nulls and empty objects/arrays, which the API server omits. */
    private static JsonNode prune(JsonNode node) {
        if (node instanceof ObjectNode o) {
            Iterator<Map.Entry<String, JsonNode>> it = o.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                JsonNode v = prune(e.getValue());
                if (v == null || v.isNull() || (v.isContainerNode() && v.isEmpty())) {
                    it.remove();
                } else {
                    e.setValue(v);
                }
            }
        } else if (node instanceof ArrayNode a) {
            for (int i = 0; i < a.size(); i++) {
                a.set(i, prune(a.get(i)));
            }
        }
        return node;
    }

    private static String firstDifference(String path, JsonNode want, JsonNode have) {
        if (want.isObject()) {
            if (!have.isObject()) {
                return path.isEmpty() ? "(root)" : path;
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = want.fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> e = it.next();
                String d = firstDifference(path.isEmpty() ? e.getKey() : path + "." + e.getKey(), e.getValue(),
                        have.path(e.getKey()));
                if (d != null) {
                    return d;
                }
            }
            return null;
        }
        if (want.isArray()) {
            if (!have.isArray() || have.size() != want.size()) {
                return path;
            }
            for (int i = 0; i < want.size(); i++) {
                String d = firstDifference(path + "[" + i + "]", want.get(i), have.get(i));
                if (d != null) {
                    return d;
                }
            }
            return null;
        }
        if (want.isNumber() && have.isNumber()) {
            return want.decimalValue().compareTo(have.decimalValue()) == 0 ? null : path;
        }
        if (want.isValueNode() && have.isValueNode()) {
            return want.equals(have) ? null : path;
        }
        return path;
    }
}
