/**
 * Kubernetes objects to discovery resources, as a pure function ({@link dev.ambient.xds.translate.MeshTranslator}).
 *
 * <h2>Mapping</h2>
 * <ul>
 *   <li><b>Pod → Workload</b>, uid {@code <clusterId>//Pod/<ns>/<name>} (cluster id "Kubernetes" by
 *   default). Only Running pods with an IP are published (status.podIPs, else status.podIP, as raw
 *   bytes); HEALTHY iff the Ready condition is True and the pod is not terminating. HBONE when the
 *   namespace has {@code istio.io/dataplane-mode=ambient} or the pod itself {@code ambient}, unless
 *   the pod says {@code none}; host-network pods are never HBONE; waypoint pods (label
 *   {@code gateway.networking.k8s.io/gateway-name} naming a waypoint Gateway) are HBONE and never get
 *   a waypoint. Every other pod is published as plain TCP so ztunnels know it. service_account
 *   (default "default"), node (spec.nodeName), node_address (status.hostIP), canonical name from
 *   {@code service.istio.io/canonical-name}, {@code app.kubernetes.io/name}, {@code app}, else the
 *   workload name; revision from {@code service.istio.io/canonical-revision},
 *   {@code app.kubernetes.io/version}, {@code version}, else "latest"; workload_name is the
 *   controlling owner (a ReplicaSet minus its pod-template-hash suffix = the Deployment), else the
 *   pod's name. trust_domain is left empty when it is the default {@code cluster.local} (empty means
 *   that default to ztunnels); cluster_id is always set.</li>
 *   <li><b>services map</b>: every Service of the pod's namespace whose (non-empty) selector matches
 *   the pod's labels, key {@code <ns>/<hostname>}, value service port → target port (named target
 *   ports resolved against the pod's container ports; unresolvable ones reported and left out). For
 *   Services without selector, EndpointSlices ({@code kubernetes.io/service-name}) name the pods
 *   (targetRef), the slice's ports are matched to the Service's by name, and endpoints whose
 *   {@code ready} condition is false are left out. Only TCP ports are served.</li>
 *   <li><b>Service</b>: hostname {@code name.ns.svc.<domain>}, addresses = clusterIPs (headless: none,
 *   still published), ports with numeric target ports (named: 0, resolved per workload; absent: the
 *   port). ExternalName services are not published.</li>
 *   <li><b>Waypoints</b>: {@code istio.io/use-waypoint} on the pod/Service, else on its namespace
 *   ({@code istio.io/use-waypoint-namespace} for another namespace; {@code none} opts out) names a
 *   Gateway of class {@code istio-waypoint}; it becomes GatewayAddress{hostname
 *   {@code <gateway>.<ns>.svc.<domain>}, namespace} (the waypoint's Service is named like its
 *   Gateway), with the HBONE listener's port when not 15008. As in Istio, the Gateway's
 *   {@code istio.io/waypoint-for} label (default {@code service}; {@code workload}, {@code all},
 *   {@code none}) decides whether Services, Workloads or both get it. A missing waypoint is
 *   reported and ignored.</li>
 *   <li><b>ServiceEntry</b>: see {@code ServiceEntryTranslator} (a Service per host, endpoints as
 *   Workloads, auto-allocated addresses from {@code AutoAllocation}).</li>
 *   <li><b>AuthorizationPolicy</b>, <b>PeerAuthentication</b>: see {@code AuthorizationTranslator}.
 *   <b>HTTPRoute</b> and <b>TCPRoute</b>: see {@code RouteTranslator} and {@code RouteFilters}.</li>
 * </ul>
 *
 * <p>Problems ({@link dev.ambient.xds.translate.Problem}) name the resource as
 * {@code Kind/namespace/name} and say what was skipped.
 */
package dev.ambient.xds.translate;
