package dev.ambient.auth;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Tokens from a file, for standalone mode and the mesh in a box (no API server to ask); svc-ca and
 * svc-xds read the same file. One caller a line:
 * {@code <token> <namespace> <serviceaccount> [<node>]}; blank lines and {@code #} comments are
 * skipped. A node makes the caller a ztunnel of that node (if its service account is a ztunnel's).
 * The file is read again when it changes (its time or size: an appended line counts at once).
 */
public final class StaticTokenFile implements TokenAuthenticator {

    private static final Logger LOG = Logger.getLogger(StaticTokenFile.class);

    private final Optional<Path> file;
    private volatile Map<String, Caller> callers = Map.of();
    private volatile String readAt;

    public StaticTokenFile(Optional<Path> file) {
        this.file = file;
        file.ifPresentOrElse(f -> reloadIfChanged(),
                () -> LOG.warn("no token file: every request will be refused"));
    }

    @Override
    public Caller authenticate(String token, String peer) {
        if (file.isEmpty()) {
            throw AuthenticationFailure.unauthenticated("no token is valid: no token file is configured");
        }
        reloadIfChanged();
        Caller found = null;
        // compare every entry in constant time, so timing tells nothing about the tokens
        for (var entry : callers.entrySet()) {
            if (MessageDigest.isEqual(entry.getKey().getBytes(StandardCharsets.UTF_8), token.getBytes(StandardCharsets.UTF_8))) {
                found = entry.getValue();
            }
        }
        if (found == null) {
            throw AuthenticationFailure.unauthenticated("the token is not listed in " + file.get());
        }
        return found;
    }

    private synchronized void reloadIfChanged() {
        Path path = file.orElseThrow();
        try {
            BasicFileAttributes attributes = Files.readAttributes(path, BasicFileAttributes.class);
            String modified = attributes.lastModifiedTime() + "/" + attributes.size() + "/" + attributes.fileKey();
            if (modified.equals(readAt)) {
                return;
            }
            callers = parse(Files.readAllLines(path, StandardCharsets.UTF_8), path);
            readAt = modified;
            LOG.infof("read %d token(s) from %s", callers.size(), path);
        } catch (IOException e) {
            LOG.errorf("cannot read token file %s: %s; keeping the %d token(s) read before", path, e.getMessage(), callers.size());
        }
    }

    static Map<String, Caller> parse(List<String> lines, Path path) {
        Map<String, Caller> parsed = new HashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] fields = line.split("\\s+");
            if (fields.length < 3 || fields.length > 4) {
                LOG.warnf("%s line %d ignored: expected \"token namespace serviceaccount [node]\"", path, i + 1);
                continue;
            }
            parsed.put(fields[0], new Caller(fields[1], fields[2], null, fields.length == 4 ? fields[3] : null));
        }
        return Map.copyOf(parsed);
    }
}
