package dev.ambient.ca.auth;

/** What the CA needs to know about a pod: its service account and the node it is scheduled on (null if none yet). */
public record PodPlacement(String namespace, String name, String serviceAccount, String nodeName) {

    @Override
    public String toString() {
        return namespace + "/" + name;
    }
}
