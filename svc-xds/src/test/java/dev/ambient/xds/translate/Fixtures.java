package dev.ambient.xds.translate;

import dev.ambient.xds.source.KubeYaml;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** The YAML fixtures under {@code src/test/resources/istio/}. */
public final class Fixtures {

    private Fixtures() {
    }

    public static String text(String name) {
        try (InputStream in = Fixtures.class.getResourceAsStream("/istio/" + name)) {
            if (in == null) {
                throw new IllegalArgumentException("no fixture " + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static List<HasMetadata> objects(String... names) {
        List<HasMetadata> out = new ArrayList<>();
        for (String n : names) {
            try {
                out.addAll(KubeYaml.parse(text(n), kind -> {
                }));
            } catch (KubeYaml.Invalid e) {
                throw new IllegalStateException(n + ": " + e.getMessage(), e);
            }
        }
        return out;
    }

    public static MeshInput input(String... names) {
        return MeshInput.builder().addAll(objects(names)).build();
    }
}
