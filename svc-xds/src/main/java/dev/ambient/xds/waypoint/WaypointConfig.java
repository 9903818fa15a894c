package dev.ambient.xds.waypoint;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;

/** Configuration of the waypoint controller: every {@code xds.waypoint.*} key. */
@ConfigMapping(prefix = "xds.waypoint")
public interface WaypointConfig {

    /** Whether this xds replica runs the waypoint controller at all (off: a mesh without an API server). */
    @WithDefault("true")
    boolean enabled();

    /** The image of the waypoint proxy that each waypoint Deployment runs. */
    @WithDefault("ambient-mesh/waypoint:0.1.0")
    String image();

    @WithDefault("IfNotPresent")
    String imagePullPolicy();

    /** The GatewayClass name this controller serves (Istio's name for waypoints). */
    @WithDefault("istio-waypoint")
    String gatewayClass();

    /**
     * When true only the replica holding the Lease {@code ambient-xds-waypoint-controller} in the
     * system namespace acts; when false this replica acts at once (single replica, tests).
     */
    @WithDefault("true")
    boolean leaderElection();

    /** Every managed Gateway is reconciled again this often, even without any event. */
    @WithDefault("60s")
    Duration resyncPeriod();

    /** How long to wait before trying again when the API server or the Gateway CRD is missing. */
    @WithDefault("30s")
    Duration retryPeriod();

    /** The cluster's DNS domain, for the Hostname address written to a Gateway's status. */
    @WithDefault("cluster.local")
    String clusterDomain();
}
