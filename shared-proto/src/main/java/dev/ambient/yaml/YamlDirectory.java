package dev.ambient.yaml;

import java.nio.file.Path;

/**
 * What counts as a file in a directory of Kubernetes-style YAML (xds's mesh directory, the
 * cni-agent's pod directory): *.yaml and *.yml, skipping anything whose name, or a parent's name
 * below the root, starts with "." (editor swap files, the ..data links of a mounted ConfigMap).
 */
public final class YamlDirectory {

    private YamlDirectory() {
    }

    /** True when {@code p} or a directory between {@code root} and it has a name starting with ".". */
    public static boolean hidden(Path root, Path p) {
        for (Path part : root.relativize(p)) {
            if (part.toString().startsWith(".")) {
                return true;
            }
        }
        return false;
    }

    public static boolean isYaml(Path p) {
        String n = p.getFileName().toString();
        return n.endsWith(".yaml") || n.endsWith(".yml");
    }
}
