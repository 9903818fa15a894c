package dev.ambient.waypoint.http;

import dev.ambient.waypoint.authz.L7Authorizer;
import dev.ambient.waypoint.proxy.UpstreamClient;
import dev.ambient.waypoint.route.LoadBalancer;
import dev.ambient.waypoint.state.StateStore;
import dev.ambient.waypoint.telemetry.RequestMetrics;

/**
 * What every request needs, built once per waypoint: the state, policy, balancing, upstream client,
 * metrics, limits, and whether the waypoint is draining.
 */
public final class DataPath {

    public final StateStore store;
    public final L7Authorizer authorizer;
    public final LoadBalancer balancer;
    public final UpstreamClient upstream;
    public final RequestMetrics metrics;
    public final RetryBudget retryBudget;
    public final int defaultRetryBudgetPercent;
    public final String trustDomain;
    private volatile boolean draining;

    public DataPath(StateStore store, L7Authorizer authorizer, LoadBalancer balancer, UpstreamClient upstream,
            RequestMetrics metrics, RetryBudget retryBudget, int defaultRetryBudgetPercent, String trustDomain) {
        this.store = store;
        this.authorizer = authorizer;
        this.balancer = balancer;
        this.upstream = upstream;
        this.metrics = metrics;
        this.retryBudget = retryBudget;
        this.defaultRetryBudgetPercent = defaultRetryBudgetPercent;
        this.trustDomain = trustDomain;
    }

    public boolean draining() {
        return draining;
    }

    public void drain() {
        draining = true;
    }
}
