package dev.ambient.net;

/** Why a bounded listener ({@link BoundedHttpListener}) closed a connection it did not serve. */
public enum ListenerLimit {
    /** The source held as many connections as one source may: the new one is closed at accept. */
    PER_SOURCE("per_source", "per source"),
    /** Every place was taken and no source held more than the newcomer would: closed at accept. */
    TOTAL("total", "in all"),
    /** Every place was taken: the oldest connection of the source holding the most made room. */
    DISPLACED("displaced", "displaced"),
    /** No complete request arrived within the first-request timeout after accept. */
    FIRST_REQUEST_TIMEOUT("first_request_timeout", "first-request timeout");

    private final String label;
    private final String words;

    ListenerLimit(String label, String words) {
        this.label = label;
        this.words = words;
    }

    /** The metric label value. */
    public String label() {
        return label;
    }

    /** How a log line names it. */
    public String words() {
        return words;
    }
}
