package dev.ambient.xds.waypoint;

import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * One log line per decision, with its reason: a decision about a Gateway is logged at INFO when
 * it differs from the previous decision about that Gateway, and at DEBUG when a resync only
 * repeats it. Actions on objects (create, update, delete) are always logged.
 */
final class DecisionLog {

    private static final Logger LOG = Logger.getLogger("dev.ambient.xds.waypoint");

    private final Map<String, String> last = new ConcurrentHashMap<>();

    /** A decision about the Gateway {@code key} (namespace/name). */
    void decide(String key, String decision) {
        if (!Objects.equals(last.put(key, decision), decision)) {
            LOG.infof("waypoint %s: %s", key, decision);
        } else {
            LOG.debugf("waypoint %s: %s (unchanged)", key, decision);
        }
    }

    /** An ignored Gateway (another class): logged at DEBUG only, ingress Gateways are not our business. */
    void ignore(String key, String decision) {
        if (!Objects.equals(last.put(key, decision), decision)) {
            LOG.debugf("waypoint %s: %s", key, decision);
        }
    }

    /** A change made to the cluster. */
    void action(String key, String action) {
        LOG.infof("waypoint %s: %s", key, action);
    }

    void forget(String key) {
        last.remove(key);
    }
}
