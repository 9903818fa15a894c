package dev.ambient.waypoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Keys and tokens made by Debian's python3-jwt and python3-cryptography (test resource
 * jwt-mint.py), so the waypoint's verifier is checked against an implementation that is not ours.
 */
public final class JwtMint {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The public key set (JSON), the set with the unpublished keys too, and the tokens by name. */
    public record Minted(String jwks, String allJwks, Map<String, String> tokens) {
        public String token(String name) {
            String t = tokens.get(name);
            if (t == null) {
                throw new IllegalArgumentException("no token " + name);
            }
            return t;
        }
    }

    private JwtMint() {
    }

    /** @param request the script's request (see jwt-mint.py) */
    public static Minted mint(String request) throws Exception {
        Path script = Path.of(JwtMint.class.getResource("/jwt-mint.py").toURI());
        Process p = new ProcessBuilder("/usr/bin/python3", script.toString()).redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        try (OutputStream in = p.getOutputStream()) {
            in.write(request.getBytes(StandardCharsets.UTF_8));
        }
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("jwt-mint.py failed (needs Debian's python3-jwt, python3-cryptography)");
        }
        JsonNode root = JSON.readTree(out);
        Map<String, String> tokens = new HashMap<>();
        root.path("tokens").properties().forEach(e -> tokens.put(e.getKey(), e.getValue().asText()));
        return new Minted(JSON.writeValueAsString(root.path("jwks")), JSON.writeValueAsString(root.path("allJwks")),
                tokens);
    }
}
