package dev.ambient.cni.plugin;

import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The CNI plugin the container runtime runs after the cluster's own network plugin, once per pod
 * sandbox and command. It changes nothing itself: on ADD it asks the node agent to enrol the pod
 * and returns only when the agent says the redirection is in place (or that the pod is not
 * enrolled), then passes the previous plugin's result on unchanged. So no pod of the mesh starts
 * uncaptured: when the agent cannot be asked, ADD fails and the kubelet retries.
 *
 * <p>No Quarkus, no CDI, no libraries: it starts for every pod. Configuration (in the conflist
 * entry): {@code agent_socket}, {@code agent_timeout_seconds}, {@code exclude_namespaces}.
 */
public final class CniPlugin {

    static final String SUPPORTED = "[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]";
    static final String DEFAULT_SOCKET = "/var/run/ambient/cni-plugin.sock";
    static final List<String> DEFAULT_EXCLUDED = List.of("kube-system", "istio-system");

    /** CNI error codes: 4 invalid configuration, 7 invalid environment, 11 try again later. */
    static final int INVALID_CONFIG = 4;
    static final int INVALID_ENV = 7;
    static final int TRY_AGAIN = 11;
    static final int AGENT_REFUSED = 100;

    private final Map<String, String> env;
    private final PrintStream out;
    private final PrintStream err;
    private String cniVersion = "1.0.0";

    CniPlugin(Map<String, String> env, PrintStream out, PrintStream err) {
        this.env = env;
        this.out = out;
        this.err = err;
    }

    public static void main(String[] args) throws IOException {
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
                StandardCharsets.UTF_8);
        String stdin = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        int code = new CniPlugin(System.getenv(), out, System.err).run(stdin);
        out.flush();
        System.exit(code);
    }

    /** A failure to report as CNI error JSON. */
    static final class Failure extends Exception {
        final int code;
        final String details;

        Failure(int code, String msg, String details) {
            super(msg);
            this.code = code;
            this.details = details;
        }
    }

    int run(String stdin) {
        String command = env.getOrDefault("CNI_COMMAND", "");
        try {
            if (command.equals("VERSION")) {
                out.println("{\"cniVersion\":\"1.0.0\",\"supportedVersions\":" + SUPPORTED + "}");
                return 0;
            }
            Json.Parsed conf;
            try {
                conf = Json.parseObject(stdin);
            } catch (Json.Invalid e) {
                throw new Failure(INVALID_CONFIG, "invalid network configuration on stdin", e.getMessage());
            }
            if (conf.object().get("cniVersion") instanceof String v) {
                cniVersion = v;
            }
            return switch (command) {
                case "ADD" -> add(conf);
                case "DEL" -> del(conf);
                case "CHECK" -> check(conf);
                case "STATUS" -> status(conf);
                case "GC" -> 0;
                default -> throw new Failure(INVALID_ENV, "unknown CNI_COMMAND '" + command + "'", "");
            };
        } catch (Failure f) {
            out.println("{\"cniVersion\":" + Json.quote(cniVersion) + ",\"code\":" + f.code + ",\"msg\":"
                    + Json.quote(f.getMessage()) + ",\"details\":" + Json.quote(f.details) + "}");
            return 1;
        }
    }

    private int add(Json.Parsed conf) throws Failure {
        String prev = conf.raw().get("prevResult");
        if (prev == null || !(conf.object().get("prevResult") instanceof Map)) {
            throw new Failure(INVALID_CONFIG, "ambient-cni must be chained after the cluster's network plugin",
                    "no prevResult in the configuration");
        }
        Map<String, String> args = cniArgs();
        String namespace = args.getOrDefault("K8S_POD_NAMESPACE", "");
        if (namespace.isEmpty() || excluded(conf, namespace)) {
            out.println(prev); // not a Kubernetes pod, or a namespace the mesh never touches
            return 0;
        }
        require("CNI_NETNS");
        Answer a = answered(ask(conf, request("ADD", args, ips(conf))));
        if (a.status().equals("error")) {
            throw new Failure(AGENT_REFUSED, "cni-agent did not enrol the pod", a.message());
        }
        out.println(prev);
        return 0;
    }

    private int del(Json.Parsed conf) {
        Map<String, String> args = cniArgs();
        String namespace = args.getOrDefault("K8S_POD_NAMESPACE", "");
        if (namespace.isEmpty() || excluded(conf, namespace)) {
            return 0;
        }
        try {
            ask(conf, request("DEL", args, List.of()));
        } catch (Failure f) {
            // DEL must succeed so the sandbox can go; the agent removes the pod when it sees it gone.
            err.println("ambient-cni: DEL not delivered: " + f.getMessage() + ": " + f.details);
        }
        return 0;
    }

    private int check(Json.Parsed conf) throws Failure {
        Map<String, String> args = cniArgs();
        String namespace = args.getOrDefault("K8S_POD_NAMESPACE", "");
        if (namespace.isEmpty() || excluded(conf, namespace)) {
            return 0;
        }
        Answer a = answered(ask(conf, request("CHECK", args, List.of())));
        if (a.status().equals("error")) {
            throw new Failure(AGENT_REFUSED, "pod is not redirected as it should be", a.message());
        }
        return 0;
    }

    /**
     * Only "ok", "skip" and "error" are answers. An agent that hung up without one (it failed, or
     * stopped mid-request) must not let the pod start uncaptured: try again later.
     */
    private static Answer answered(Answer a) throws Failure {
        return switch (a.status()) {
            case "ok", "skip", "error" -> a;
            default -> throw new Failure(TRY_AGAIN, "cni-agent gave no answer",
                    a.status().isEmpty() ? "connection closed without a reply" : "unknown status " + a.status());
        };
    }

    private int status(Json.Parsed conf) throws Failure {
        Path socket = socket(conf);
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return 0;
        } catch (IOException e) {
            throw new Failure(50, "cni-agent is not running", socket + ": " + e.getMessage());
        }
    }

    private Map<String, String> request(String command, Map<String, String> args, List<String> ips) {
        Map<String, String> r = new LinkedHashMap<>();
        r.put("command", command);
        r.put("namespace", args.getOrDefault("K8S_POD_NAMESPACE", ""));
        r.put("name", args.getOrDefault("K8S_POD_NAME", ""));
        r.put("uid", args.getOrDefault("K8S_POD_UID", ""));
        r.put("container", env.getOrDefault("CNI_CONTAINERID", ""));
        r.put("netns", env.getOrDefault("CNI_NETNS", ""));
        r.put("ips", String.join(",", ips));
        return r;
    }

    record Answer(String status, String message) {
    }

    private Answer ask(Json.Parsed conf, Map<String, String> request) throws Failure {
        Path socket = socket(conf);
        long timeout = conf.object().get("agent_timeout_seconds") instanceof Double d ? d.longValue() : 45;
        CompletableFuture<Answer> answer = CompletableFuture.supplyAsync(() -> {
            try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                ch.connect(UnixDomainSocketAddress.of(socket));
                PluginProtocol.write(ch, PluginProtocol.encode(request));
                String[] lines = PluginProtocol.read(ch).split("\n", 2);
                return new Answer(lines[0].strip(), lines.length > 1 ? lines[1].strip() : "");
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, r -> Thread.ofPlatform().daemon().start(r));
        try {
            return answer.get(timeout, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new Failure(TRY_AGAIN, "cni-agent did not answer within " + timeout + " s", socket.toString());
        } catch (Exception e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            if (c.getCause() != null) {
                c = c.getCause();
            }
            throw new Failure(TRY_AGAIN, "cni-agent unreachable; the pod is not started rather than started "
                    + "outside the mesh", socket + ": " + c.getMessage());
        }
    }

    private Path socket(Json.Parsed conf) {
        return Path.of(conf.object().get("agent_socket") instanceof String s ? s : DEFAULT_SOCKET);
    }

    private boolean excluded(Json.Parsed conf, String namespace) {
        Object list = conf.object().get("exclude_namespaces");
        if (list instanceof List<?> l) {
            return l.contains(namespace);
        }
        return DEFAULT_EXCLUDED.contains(namespace);
    }

    @SuppressWarnings("unchecked")
    private List<String> ips(Json.Parsed conf) {
        List<String> out = new ArrayList<>();
        if (conf.object().get("prevResult") instanceof Map<?, ?> prev && prev.get("ips") instanceof List<?> ips) {
            for (Object o : ips) {
                if (o instanceof Map<?, ?> m && m.get("address") instanceof String a) {
                    int slash = a.indexOf('/');
                    out.add(slash < 0 ? a : a.substring(0, slash));
                }
            }
        }
        return out;
    }

    private void require(String name) throws Failure {
        if (env.getOrDefault(name, "").isEmpty()) {
            throw new Failure(INVALID_ENV, name + " is not set", "");
        }
    }

    /** CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=name;K8S_POD_UID=uid". */
    private Map<String, String> cniArgs() {
        Map<String, String> out = new LinkedHashMap<>();
        for (String kv : env.getOrDefault("CNI_ARGS", "").split(";")) {
            int eq = kv.indexOf('=');
            if (eq > 0) {
                out.put(kv.substring(0, eq).strip(), kv.substring(eq + 1).strip());
            }
        }
        return out;
    }
}
