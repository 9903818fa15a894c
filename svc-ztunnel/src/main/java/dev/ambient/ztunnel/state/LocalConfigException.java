package dev.ambient.ztunnel.state;

import java.util.List;

/**
 * The standalone configuration could not be used. The message is one line; each problem names
 * where it is, e.g. {@code workloads[2].workloadIps[0]: not an IP address: 'x'}.
 */
public final class LocalConfigException extends Exception {

    private static final long serialVersionUID = 1L;

    @SuppressWarnings("serial") // always an immutable List.of/copyOf list, which is serializable
    private final List<String> problems;

    public LocalConfigException(String problem) {
        this(List.of(problem));
    }

    public LocalConfigException(String problem, Throwable cause) {
        super(problem, cause);
        this.problems = List.of(problem);
    }

    /** One or more problems; the message joins them with "; ". */
    public LocalConfigException(List<String> problems) {
        super(join(problems));
        this.problems = List.copyOf(problems);
    }

    /** The same problems, with a message saying where they are (e.g. the file name). */
    LocalConfigException(String where, LocalConfigException cause) {
        super(where + ": " + cause.getMessage(), cause);
        this.problems = cause.problems;
    }

    /** The individual problems, each starting with its path. */
    public List<String> problems() {
        return problems;
    }

    private static String join(List<String> problems) {
        if (problems.isEmpty()) {
            return "invalid configuration";
        }
        if (problems.size() == 1) {
            return problems.getFirst();
        }
        return problems.size() + " problems: " + String.join("; ", problems);
    }
}
