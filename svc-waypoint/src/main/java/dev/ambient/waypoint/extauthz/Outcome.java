package dev.ambient.waypoint.extauthz;

import java.util.List;
import java.util.Map;

/** What one ext_authz check came to. */
public sealed interface Outcome {

    /** A header the authorizer asks for on the request going upstream: replaces the client's copies unless appended. */
    record HeaderChange(String name, String value, boolean append) {
    }

    /**
     * The authorizer allows: these changes go into the request forwarded upstream, these headers
     * into the response to the client.
     */
    record Allow(List<HeaderChange> upstream, List<String> upstreamRemovals, List<Map.Entry<String, String>> downstream,
            String reason) implements Outcome {
        static Allow plain(String reason) {
            return new Allow(List.of(), List.of(), List.of(), reason);
        }
    }

    /** The authorizer denies: its status, headers and body are the client's answer. */
    record Deny(int status, List<Map.Entry<String, String>> headers, String body, String reason) implements Outcome {
    }

    /** The authorizer could not answer; {@link ExtAuthz} turns it into an Allow (failOpen) or a Deny (statusOnError). */
    record Failure(Kind kind, String reason) implements Outcome {
    }

    /** Why a check failed, with its metric outcome. */
    enum Kind {
        ERROR("error"), TIMEOUT("timeout"), OVERLOADED("overloaded");

        final String tag;

        Kind(String tag) {
            this.tag = tag;
        }
    }
}
