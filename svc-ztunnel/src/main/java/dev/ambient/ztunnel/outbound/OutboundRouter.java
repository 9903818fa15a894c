package dev.ambient.ztunnel.outbound;

import com.google.protobuf.ByteString;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.guard.OwnListeners;
import dev.ambient.ztunnel.guard.SelfTarget;
import dev.ambient.ztunnel.dns.DnsNames;
import dev.ambient.ztunnel.identity.WorkloadIdentity;
import dev.ambient.ztunnel.state.StateSnapshot;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Decides the route of an outbound connection: a service VIP picks a healthy endpoint and its
 * target port; a destination (or service) with a waypoint goes to the waypoint; HBONE workloads
 * get a tunnel to their own 15008; anything else passes through as plain TCP. A destination that is
 * one of the ztunnel's own listeners is refused (a passthrough to our own 15001 would be captured
 * by that same 15001 with the same original destination, forever). A ServiceEntry is a service
 * like any other, seen only from the namespaces it is exported to; with resolution NONE its
 * connections go where the client dialled, with resolution DNS to its endpoints' names, resolved
 * then. Under REGISTRY_ONLY (Istio's outboundTrafficPolicy) a destination that is no known
 * workload, service or ServiceEntry is refused instead of passed through.
 */
public final class OutboundRouter {

    /** Istio's outboundTrafficPolicy.mode. */
    public enum TrafficPolicy {
        ALLOW_ANY, REGISTRY_ONLY;

        public static TrafficPolicy of(String s) {
            try {
                return valueOf(s.trim());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("ztunnel.outbound-traffic-policy=" + s
                        + " is unknown; use ALLOW_ANY or REGISTRY_ONLY", e);
            }
        }
    }

    private final String trustDomain;
    private final int defaultHbonePort;
    private final OwnListeners ownListeners;
    private final TrafficPolicy policy;

    public OutboundRouter(String trustDomain, int defaultHbonePort, OwnListeners ownListeners) {
        this(trustDomain, defaultHbonePort, ownListeners, TrafficPolicy.ALLOW_ANY);
    }

    public OutboundRouter(String trustDomain, int defaultHbonePort, OwnListeners ownListeners, TrafficPolicy policy) {
        this.trustDomain = trustDomain;
        this.defaultHbonePort = defaultHbonePort;
        this.ownListeners = ownListeners;
        this.policy = policy;
    }

    /**
     * A name resolved for a {@link Route.ByName}: the address it gave must not be one of our own
     * listeners either. Empty when it may be dialled, else the refusal.
     */
    public Optional<Route.Refused> checkResolved(StateSnapshot state, Workload source, InetSocketAddress resolved) {
        return selfTarget(state, source, resolved) instanceof SelfTarget.Own own
                ? Optional.of(new Route.Refused(own.reason())) : Optional.empty();
    }

    public Route route(StateSnapshot state, Workload source, InetSocketAddress dst) {
        if (selfTarget(state, source, dst) instanceof SelfTarget.Own own) {
            return new Route.Refused(own.reason());
        }
        Route route = decide(state, source, dst);
        // A service's target port is the control plane's word, but must not point back at us either.
        if (route instanceof Route.Passthrough p && !p.target().equals(dst)
                && selfTarget(state, source, p.target()) instanceof SelfTarget.Own own) {
            return new Route.Refused(own.reason());
        }
        return route;
    }

    /** Local: a workload on the source's node (the source itself included, listed or not yet). */
    private SelfTarget selfTarget(StateSnapshot state, Workload source, InetSocketAddress dst) {
        boolean local = dst.getAddress() != null && (state.workloadOnNode(dst.getAddress(), source.getNode()).isPresent()
                || source.getAddressesList().contains(ByteString.copyFrom(dst.getAddress().getAddress())));
        return ownListeners.check(dst, local);
    }

    private Route decide(StateSnapshot state, Workload source, InetSocketAddress dst) {
        Optional<Service> service = state.serviceByAddress(dst.getAddress())
                .filter(s -> DnsNames.visibleTo(s, source.getNamespace()));
        if (service.isPresent()) {
            return toService(state, source, service.get(), dst);
        }
        Optional<Workload> workload = state.workloadByAddress(dst.getAddress());
        if (workload.isEmpty()) {
            if (policy == TrafficPolicy.REGISTRY_ONLY) {
                return new Route.Refused("destination " + dst.getAddress().getHostAddress() + ":" + dst.getPort()
                        + " is not a known workload, service or ServiceEntry: refused by outbound traffic policy"
                        + " REGISTRY_ONLY");
            }
            return new Route.Passthrough(dst, null, null);
        }
        Workload w = workload.get();
        if (w.hasWaypoint()) {
            Optional<Route> viaWaypoint = toWaypoint(state, source, w.getWaypoint(), dst, w, null);
            if (viaWaypoint.isPresent()) {
                return viaWaypoint.get();
            }
        }
        return toWorkload(w, null, dst);
    }

    private Route toService(StateSnapshot state, Workload source, Service service, InetSocketAddress vip) {
        boolean hasPort = service.getPortsList().stream().anyMatch(p -> p.getServicePort() == vip.getPort());
        if (!hasPort) {
            return new Route.Refused("service " + service.getHostname() + " has no port " + vip.getPort());
        }
        if (service.hasWaypoint()) {
            Optional<Route> viaWaypoint = toWaypoint(state, source, service.getWaypoint(), vip, null, service);
            if (viaWaypoint.isPresent()) {
                return viaWaypoint.get();
            }
        }
        if (service.getResolution() == Service.Resolution.PASSTHROUGH) {
            return new Route.Passthrough(vip, null, service); // ServiceEntry resolution NONE: where the client dialled
        }
        List<Workload> endpoints = state.healthyEndpoints(service);
        if (endpoints.isEmpty()) {
            return new Route.Refused("service " + service.getHostname() + " has no healthy endpoint");
        }
        Workload endpoint = endpoints.get(ThreadLocalRandom.current().nextInt(endpoints.size()));
        int targetPort = state.targetPort(endpoint, service, vip.getPort());
        if (targetPort > 0 && endpoint.getAddressesCount() == 0 && !endpoint.getHostname().isEmpty()) {
            return new Route.ByName(endpoint.getHostname(), targetPort, endpoint, service);
        }
        if (targetPort <= 0 || endpoint.getAddressesCount() == 0) {
            return new Route.Refused("endpoint " + endpoint.getUid() + " has no address or port for " + vip.getPort());
        }
        InetSocketAddress target = new InetSocketAddress(sameFamily(endpoint.getAddressesList(), vip.getAddress()),
                targetPort);
        return toWorkload(endpoint, service, target);
    }

    private Route toWorkload(Workload w, Service service, InetSocketAddress target) {
        if (w.getTunnelProtocol() != TunnelProtocol.HBONE) {
            return new Route.Passthrough(target, w, service);
        }
        Set<SpiffeId> expected = new HashSet<>();
        expected.add(WorkloadIdentity.of(w, trustDomain));
        if (service != null) {
            for (String san : service.getSubjectAltNamesList()) {
                try {
                    expected.add(SpiffeId.parse(san));
                } catch (IllegalArgumentException ignored) {
                    // Non-SPIFFE SANs never match a mesh certificate.
                }
            }
        }
        return new Route.Hbone(new InetSocketAddress(target.getAddress(), defaultHbonePort), target, Set.copyOf(expected),
                w, service, false);
    }

    /** Empty when the waypoint cannot be resolved, or when the source is the waypoint itself. */
    private Optional<Route> toWaypoint(StateSnapshot state, Workload source, GatewayAddress gw,
            InetSocketAddress authority, Workload destination, Service service) {
        int port = gw.getHboneMtlsPort() == 0 ? defaultHbonePort : gw.getHboneMtlsPort();
        Workload waypoint = null;
        if (gw.hasAddress()) {
            waypoint = state.workloadByAddress(address(gw.getAddress().getAddress().toByteArray())).orElse(null);
        } else if (gw.hasHostname()) {
            Optional<Service> wpService = state.serviceByHostname(gw.getHostname().getNamespace(),
                    gw.getHostname().getHostname());
            List<Workload> pods = wpService.map(state::healthyEndpoints).orElse(List.of());
            if (!pods.isEmpty()) {
                waypoint = pods.get(ThreadLocalRandom.current().nextInt(pods.size()));
            }
        }
        if (waypoint == null || waypoint.getAddressesCount() == 0 || source.getUid().equals(waypoint.getUid())) {
            return Optional.empty();
        }
        InetAddress ip = sameFamily(waypoint.getAddressesList(), authority.getAddress());
        return Optional.of(new Route.Hbone(new InetSocketAddress(ip, port), authority,
                Set.of(WorkloadIdentity.of(waypoint, trustDomain)), destination, service, true));
    }

    /**
     * A dual-stack workload's address of the family the client dialled (an IPv6 VIP leads to the
     * endpoint's IPv6 address, as in Istio), else its first one.
     */
    private static InetAddress sameFamily(List<com.google.protobuf.ByteString> addresses, InetAddress dialled) {
        int length = dialled.getAddress().length;
        for (com.google.protobuf.ByteString a : addresses) {
            if (a.size() == length) {
                return address(a.toByteArray());
            }
        }
        return address(addresses.get(0).toByteArray());
    }

    private static InetAddress address(byte[] raw) {
        try {
            return InetAddress.getByAddress(raw);
        } catch (UnknownHostException e) {
            throw new IllegalStateException("malformed address in state", e);
        }
    }
}
