package dev.ambient.ca.config;

/** A {@code namespace/name} reference from the configuration. */
public record NamespacedName(String namespace, String name) {

    public static NamespacedName parse(String key, String value) {
        int slash = value == null ? -1 : value.indexOf('/');
        if (slash <= 0 || slash == value.length() - 1 || value.indexOf('/', slash + 1) >= 0) {
            throw new IllegalArgumentException(key + " must be namespace/name, not \"" + value + "\"");
        }
        return new NamespacedName(value.substring(0, slash), value.substring(slash + 1));
    }

    @Override
    public String toString() {
        return namespace + "/" + name;
    }
}
