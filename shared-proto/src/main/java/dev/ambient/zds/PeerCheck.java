package dev.ambient.zds;

/** Whether the process at the other end of a ZDS connection may speak ZDS with us. */
public sealed interface PeerCheck {

    /** It may: its credentials, for the log. */
    record Admitted(PeerCredentials peer) implements PeerCheck {
    }

    /**
     * It may not.
     *
     * @param reason a metric tag: {@code uid} (a uid not allowed), {@code no_credentials} (the
     *     kernel could not say who it is)
     * @param detail one sentence for the log, naming the peer when known
     */
    record Refused(String reason, String detail) implements PeerCheck {
    }
}
