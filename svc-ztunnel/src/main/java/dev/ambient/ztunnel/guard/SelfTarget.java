package dev.ambient.ztunnel.guard;

import java.net.InetSocketAddress;

/** Whether a destination a client named is one of this ztunnel's own listeners. */
public sealed interface SelfTarget {

    /** Not ours: it may be dialled (policy still applies). */
    record Elsewhere() implements SelfTarget {
    }

    /** One of our own listeners, or the unspecified address (this host): never dialled. */
    record Own(InetSocketAddress destination, String listener) implements SelfTarget {
        /** For the access log and the refusal: names the destination and the listener it hits. */
        public String reason() {
            return "destination " + destination.getAddress().getHostAddress() + ":" + destination.getPort()
                    + " is this ztunnel's own " + listener + " listener (a ztunnel never dials itself)";
        }
    }

    Elsewhere ELSEWHERE = new Elsewhere();
}
