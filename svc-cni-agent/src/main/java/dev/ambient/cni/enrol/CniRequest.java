package dev.ambient.cni.enrol;

import java.util.List;

/**
 * What the CNI plugin tells the agent about one pod sandbox.
 *
 * @param command ADD, DEL or CHECK
 * @param netns CNI_NETNS, the pod's network namespace path (may be empty on DEL)
 * @param ips the pod's addresses from the previous plugin's result
 */
public record CniRequest(String command, String namespace, String name, String uid, String containerId,
        String netns, List<String> ips) {
}
