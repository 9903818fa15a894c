package dev.ambient.waypoint.extauthz;

/**
 * Where one check goes: an endpoint address svc-xds resolved, or a name outside the mesh.
 * {@code hbone}: a mesh workload, reached only through {@link MeshAuthorizerBridge}.
 */
record Target(String host, int port, boolean hbone) {

    Target(String host, int port) {
        this(host, port, false);
    }

    /** "ip:port" or "[v6]:port", dialled directly. */
    static Target parse(String endpoint) {
        int colon = endpoint.lastIndexOf(':');
        String host = endpoint.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        return new Target(host, Integer.parseInt(endpoint.substring(colon + 1)));
    }

    @Override
    public String toString() {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
