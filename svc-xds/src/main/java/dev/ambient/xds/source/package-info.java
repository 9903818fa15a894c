/**
 * Where the Kubernetes objects come from, as a {@link dev.ambient.xds.model.MeshModel}:
 * {@link dev.ambient.xds.source.KubernetesMeshSource} (informers on the API server; the default) or
 * {@link dev.ambient.xds.source.DirectoryMeshSource} (a directory of YAML: the mesh in a box),
 * chosen by {@link dev.ambient.xds.source.MeshSourceProducer}.
 *
 * <h2>Configuration</h2>
 * <table>
 *   <caption>keys</caption>
 *   <tr><th>key</th><th>default</th><th>meaning</th></tr>
 *   <tr><td>{@code xds.source}</td><td>{@code kubernetes}</td><td>{@code kubernetes} or {@code directory}</td></tr>
 *   <tr><td>{@code xds.directory}</td><td>(none)</td><td>the YAML directory, with {@code xds.source=directory}</td></tr>
 *   <tr><td>{@code xds.cluster-id}</td><td>{@code Kubernetes}</td><td>cluster id in workload uids</td></tr>
 *   <tr><td>{@code xds.trust-domain}</td><td>{@code cluster.local}</td><td>SPIFFE trust domain of workloads</td></tr>
 *   <tr><td>{@code xds.system-namespace}</td><td>{@code istio-system}</td><td>mesh root namespace (GLOBAL policies)</td></tr>
 *   <tr><td>{@code xds.waypoint.gateway-class}</td><td>{@code istio-waypoint}</td><td>gatewayClassName of waypoints</td></tr>
 *   <tr><td>{@code xds.waypoint.cluster-domain}</td><td>{@code cluster.local}</td><td>DNS suffix of service hostnames</td></tr>
 *   <tr><td>{@code xds.debounce}</td><td>{@code 100ms}</td><td>changes within this interval make one recomputation</td></tr>
 * </table>
 *
 * <h2>The mesh in a box</h2>
 * Pods written in the directory are network namespaces, not kubelet-managed pods: nobody fills in
 * their status, so the user writes it: {@code status.phase: Running}, {@code status.podIP} (or
 * {@code podIPs}), {@code spec.nodeName} (the ztunnel node that serves it) and a
 * {@code Ready: "True"} condition for a HEALTHY workload. Example:
 * <pre>
 * apiVersion: v1
 * kind: Pod
 * metadata: {name: sleep, namespace: demo, labels: {app: sleep}}
 * spec: {nodeName: node-a, serviceAccountName: sleep, containers: [{name: sleep, image: none}]}
 * status:
 *   phase: Running
 *   podIP: 127.0.10.1
 *   conditions: [{type: Ready, status: "True"}]
 * </pre>
 */
package dev.ambient.xds.source;
