package dev.ambient.xds.translate;

import java.util.Objects;

/**
 * Something wrong with one input resource, for status and logs: the resource ({@code
 * "Kind/namespace/name"}, or a file name for the directory source) and why it was (partly) skipped.
 */
public record Problem(String resource, String reason) implements Comparable<Problem> {

    public Problem {
        Objects.requireNonNull(resource, "resource");
        Objects.requireNonNull(reason, "reason");
    }

    @Override
    public int compareTo(Problem o) {
        int c = resource.compareTo(o.resource);
        return c != 0 ? c : reason.compareTo(o.reason);
    }

    @Override
    public String toString() {
        return resource + ": " + reason;
    }
}
