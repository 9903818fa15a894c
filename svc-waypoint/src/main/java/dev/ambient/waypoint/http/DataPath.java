package dev.ambient.waypoint.http;

import dev.ambient.identity.SpiffeId;
import dev.ambient.waypoint.authn.RequestAuthenticator;
import dev.ambient.waypoint.authz.L7Authorizer;
import dev.ambient.waypoint.extauthz.ExtAuthz;
import dev.ambient.waypoint.proxy.UpstreamClient;
import dev.ambient.waypoint.route.LoadBalancer;
import dev.ambient.waypoint.state.StateStore;
import dev.ambient.waypoint.telemetry.RequestMetrics;
import dev.ambient.waypoint.telemetry.SourceWorkloads;

/**
 * What every request needs, built once per waypoint: the state, authentication, policy (and the
 * bodies held for its external authorizers), balancing,
 * upstream client, metrics, limits, request mirroring, this waypoint's identity, and whether the
 * waypoint is draining.
 */
public final class DataPath {

    public final StateStore store;
    public final L7Authorizer authorizer;
    public final ExtAuthz extAuthz;
    /** The request bodies held for ext_authz checks, bounded across requests. */
    public final HeldBodies heldBodies;
    public final LoadBalancer balancer;
    public final UpstreamClient upstream;
    public final RequestMetrics metrics;
    public final RetryBudget retryBudget;
    public final int defaultRetryBudgetPercent;
    public final String trustDomain;
    public final SpiffeId self;
    public final HttpLimits limits;
    public final Mirrors mirrors;
    public final SourceWorkloads sources = new SourceWorkloads();
    public final RequestAuthenticator authenticator;
    private volatile boolean draining;

    public DataPath(StateStore store, L7Authorizer authorizer, ExtAuthz extAuthz, HeldBodies heldBodies,
            LoadBalancer balancer, UpstreamClient upstream,
            RequestMetrics metrics, RetryBudget retryBudget, int defaultRetryBudgetPercent, String trustDomain,
            SpiffeId self, HttpLimits limits, RequestAuthenticator authenticator, Mirrors mirrors) {
        this.store = store;
        this.authorizer = authorizer;
        this.extAuthz = extAuthz;
        this.heldBodies = heldBodies;
        this.balancer = balancer;
        this.upstream = upstream;
        this.metrics = metrics;
        this.retryBudget = retryBudget;
        this.defaultRetryBudgetPercent = defaultRetryBudgetPercent;
        this.trustDomain = trustDomain;
        this.self = self;
        this.limits = limits;
        this.authenticator = authenticator;
        this.mirrors = mirrors;
    }

    public boolean draining() {
        return draining;
    }

    public void drain() {
        draining = true;
    }
}
