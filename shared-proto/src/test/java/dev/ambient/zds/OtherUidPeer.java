package dev.ambient.zds;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * A hostile local process on the node: {@code zds_peer.py} (python's own AF_UNIX SOCK_SEQPACKET and
 * SCM_RIGHTS, not our transport) run by setpriv as uid/gid {@value #UID}, with CAP_DAC_OVERRIDE so
 * that file modes do not stop it (as they do not stop any process holding that capability): what
 * must stop it is the check of who it is. Needs root (to drop to that uid), setpriv and python3.
 */
public final class OtherUidPeer implements AutoCloseable {

    public static final long UID = 65534;
    static final String PYTHON = "/usr/bin/python3";

    private final Process process;
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final Thread reader;

    private OtherUidPeer(Process process) {
        this.process = process;
        this.reader = Thread.ofPlatform().daemon().name("other-uid-peer").start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    lines.add(line);
                }
            } catch (IOException e) {
                // the process ended
            }
        });
    }

    /** Root, setpriv and python3 are here: the tests that need another uid can run. */
    public static boolean available() {
        return "root".equals(System.getProperty("user.name")) && Files.isExecutable(Path.of("/usr/bin/setpriv"))
                && Files.isExecutable(Path.of(PYTHON));
    }

    /** Connects to {@code socket}, says {@code hello}, answers every packet with {@code ack} for {@code within}. */
    public static OtherUidPeer client(Path socket, byte[] hello, byte[] ack, Duration within) throws IOException {
        return start(List.of("client", "--path", socket.toString(), "--hello", HexFormat.of().formatHex(hello),
                "--ack", HexFormat.of().formatHex(ack), "--seconds", seconds(within)));
    }

    /**
     * Listens at {@code socket} (replacing what is there) for up to {@code connections} connections
     * within {@code within}; on each, after a hello, sends {@code request} with {@code netns} as SCM_RIGHTS.
     */
    public static OtherUidPeer server(Path socket, byte[] request, Path netns, int connections, Duration within)
            throws IOException {
        return start(List.of("server", "--path", socket.toString(), "--request", HexFormat.of().formatHex(request),
                "--netns", netns.toString(), "--connections", String.valueOf(connections),
                "--seconds", seconds(within)));
    }

    private static String seconds(Duration d) {
        return String.valueOf(d.toMillis() / 1000.0);
    }

    private static OtherUidPeer start(List<String> args) throws IOException {
        String script;
        try (InputStream in = OtherUidPeer.class.getResourceAsStream("zds_peer.py")) {
            script = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/setpriv", "--reuid=" + UID, "--regid=" + UID,
                "--clear-groups", "--inh-caps=+dac_override", "--ambient-caps=+dac_override", PYTHON, "-I", "-c",
                script));
        cmd.addAll(args);
        return new OtherUidPeer(new ProcessBuilder(cmd).directory(Path.of("/").toFile()).redirectErrorStream(true)
                .start());
    }

    public long pid() {
        return process.pid();
    }

    /** Waits (10 s at most) until the peer printed {@code line} (connected=true, listening=true). */
    public void await(String line) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!lines.contains(line)) {
            if (System.nanoTime() > end || !process.isAlive() && !lines.contains(line)) {
                reader.join(1_000);
                if (lines.contains(line)) {
                    return;
                }
                throw new AssertionError("the peer did not say " + line + "; it said: " + lines);
            }
            Thread.sleep(10);
        }
    }

    /** Waits for the peer to finish; what it counted (key=value lines). */
    public Map<String, String> report() throws InterruptedException {
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("the peer did not finish; it said: " + lines);
        }
        reader.join(5_000);
        Map<String, String> report = new HashMap<>();
        for (String line : lines) {
            int eq = line.indexOf('=');
            if (eq > 0 && line.indexOf(' ') < 0) {
                report.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        if (!report.containsKey("uid")) {
            throw new AssertionError("the peer failed: " + lines);
        }
        report.put("output", String.join("\n", lines));
        return report;
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }
}
