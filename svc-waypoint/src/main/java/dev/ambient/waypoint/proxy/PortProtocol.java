package dev.ambient.waypoint.proxy;

import dev.ambient.proto.workload.Service;
import dev.ambient.waypoint.http.UpstreamProtocol;
import dev.ambient.waypoint.state.WaypointState;

/**
 * What a tunnel to a service port carries, decided as Istio decides it: from the port's declared
 * protocol (appProtocol, else the port name, as svc-xds publishes it), never from how fast or how
 * oddly a client talks. Only a port that declares nothing is sniffed; whatever a sniffed stream
 * turns out to be, it is authorized as that.
 */
public enum PortProtocol {
    /** http, http2, grpc, grpc-web: HTTP/1.1 or h2c, by the client's first bytes; never TCP. */
    HTTP,
    /** Any other declared protocol (tcp, tls, https, mysql, ...): TCP, authorized as TCP before it is accepted. */
    TCP,
    /** Nothing declared (or a workload addressed directly): sniffed. */
    UNDECLARED;

    public static PortProtocol of(Service service, int servicePort) {
        if (service == null) {
            return UNDECLARED;
        }
        String declared = WaypointState.appProtocol(service, servicePort);
        if (declared.isEmpty()) {
            return UNDECLARED;
        }
        return UpstreamProtocol.isHttp(declared) ? HTTP : TCP;
    }
}
