package dev.ambient.cni.redirect;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs a command inside a network namespace ({@code nsenter --net=PATH}), with input on stdin and
 * a deadline, and returns its output. Blocking: worker threads only.
 */
public final class NetnsCommand {

    /** A command that exited non-zero; the message carries its stderr. */
    public static final class Failed extends IOException {
        public Failed(String message) {
            super(message);
        }
    }

    private final Duration timeout;

    public NetnsCommand(Duration timeout) {
        this.timeout = timeout;
    }

    public String run(Path netns, String stdin, String... command) throws IOException {
        List<String> argv = new ArrayList<>();
        argv.add("nsenter");
        argv.add("--net=" + netns);
        argv.add("--");
        argv.addAll(List.of(command));
        Process p = new ProcessBuilder(argv).start();
        CompletableFuture<String> out = drain(p.getInputStream());
        CompletableFuture<String> err = drain(p.getErrorStream());
        try (OutputStream in = p.getOutputStream()) {
            if (stdin != null) {
                in.write(stdin.getBytes(StandardCharsets.UTF_8));
            }
        } catch (IOException e) {
            // the command exited early; its exit code and stderr say why
        }
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new Failed(String.join(" ", command) + " in " + netns + " did not finish in " + timeout);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        if (p.exitValue() != 0) {
            throw new Failed(String.join(" ", command) + " in " + netns + " exited " + p.exitValue() + ": "
                    + err.join().strip());
        }
        return out.join();
    }

    private static CompletableFuture<String> drain(InputStream s) {
        CompletableFuture<String> f = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try (s) {
                f.complete(new String(s.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                f.complete("");
            }
        });
        return f;
    }
}
