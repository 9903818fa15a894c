package dev.ambient.cni.plugin;

import java.time.Duration;

/**
 * The chain of deadlines around one CNI ADD, each inside the one that waits for it:
 * the kubelet's runtime request ({@code --runtime-request-timeout}, 2 min by default) &gt; the
 * plugin's {@code agent_timeout_seconds} &gt; the agent's answer &gt; {@code cni.ztunnel-wait}
 * &gt; {@code cni.ack-timeout} (one ZDS request; the ztunnel's own certificate wait in an Add, 5 s,
 * is inside it). So the agent always answers the plugin with its own reason before the plugin
 * gives up with "try again", and it has stopped working on the pod by then.
 *
 * @param lookupTimeout {@code cni.kubernetes-lookup-timeout}, a CNI ADD's API lookup on a cache miss
 * @param ztunnelWait {@code cni.ztunnel-wait}, how long an ADD waits for the ztunnel's ack
 * @param ackTimeout {@code cni.ack-timeout}, one ZDS request
 */
public record CniDeadlines(Duration lookupTimeout, Duration ztunnelWait, Duration ackTimeout) {

    /** Installing the rules after the ack, and answering. */
    static final Duration RULES = Duration.ofSeconds(5);
    /** Between the agent's answer and the plugin giving up (a loaded node, the plugin's JVM start). */
    static final Duration PLUGIN_MARGIN = Duration.ofSeconds(5);
    /** The kubelet's default --runtime-request-timeout, which bounds the whole sandbox creation. */
    static final Duration KUBELET = Duration.ofMinutes(2);

    /** The agent's configuration is refused at start when its deadlines do not nest. */
    public CniDeadlines requireNested() {
        if (ackTimeout.compareTo(ztunnelWait) >= 0) {
            throw new IllegalArgumentException("cni.ack-timeout (" + ackTimeout + ") must be shorter than"
                    + " cni.ztunnel-wait (" + ztunnelWait + "): an ADD must outlive one ZDS request");
        }
        Duration plugin = lookupTimeout.plus(ztunnelWait).plus(RULES).plus(PLUGIN_MARGIN);
        if (plugin.compareTo(KUBELET) >= 0) {
            throw new IllegalArgumentException("cni.kubernetes-lookup-timeout (" + lookupTimeout + ") + cni.ztunnel-wait ("
                    + ztunnelWait + ") + " + RULES.plus(PLUGIN_MARGIN).toSeconds() + " s must stay below the kubelet's"
                    + " runtime request timeout (" + KUBELET.toSeconds() + " s)");
        }
        return this;
    }

    /** The agent answers a CNI request within this (from when it reads it). */
    public Duration agentAnswer() {
        return lookupTimeout.plus(ztunnelWait).plus(RULES);
    }

    /** What the plugin's {@code agent_timeout_seconds} is set to: the agent's answer plus a margin. */
    public long pluginTimeoutSeconds() {
        Duration d = agentAnswer().plus(PLUGIN_MARGIN);
        return d.toSeconds() + (d.toNanosPart() > 0 ? 1 : 0);
    }
}
