package dev.ambient.cni.enrol;

/** The agent's answer to the plugin: ok (redirection in place), skip (not enrolled) or error. */
public record CniAnswer(Status status, String message) {

    public enum Status {
        OK, SKIP, ERROR
    }

    public static CniAnswer ok(String m) {
        return new CniAnswer(Status.OK, m);
    }

    public static CniAnswer skip(String m) {
        return new CniAnswer(Status.SKIP, m);
    }

    public static CniAnswer error(String m) {
        return new CniAnswer(Status.ERROR, m);
    }
}
