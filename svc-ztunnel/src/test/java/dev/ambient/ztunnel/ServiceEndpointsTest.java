package dev.ambient.ztunnel;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

/**
 * What a kubelet and a Prometheus see of this service: probes and a metrics page; and what only
 * the node itself sees: the admin page, on loopback alone.
 */
@QuarkusTest
class ServiceEndpointsTest {

    static final int METRICS_TEST_PORT = 55020;
    static final int ADMIN_TEST_PORT = 55000;

    @Test
    void readinessAndLivenessAnswerUp() {
        given().get("/healthz/ready").then().statusCode(200).body("status", equalTo("UP"));
        given().get("/healthz/live").then().statusCode(200).body("status", equalTo("UP"));
    }

    @Test
    void theConfigDumpAnswersOnLoopbackOnly() throws Exception {
        given().port(ADMIN_TEST_PORT).get("/config_dump").then().statusCode(200).body(containsString("workloads"));
        for (var nic : java.util.Collections.list(java.net.NetworkInterface.getNetworkInterfaces())) {
            for (var address : java.util.Collections.list(nic.getInetAddresses())) {
                if (address instanceof java.net.Inet4Address && !address.isLoopbackAddress()) {
                    try (var socket = new java.net.Socket()) {
                        org.junit.jupiter.api.Assertions.assertThrows(java.net.ConnectException.class,
                                () -> socket.connect(new java.net.InetSocketAddress(address, ADMIN_TEST_PORT), 2000),
                                "the admin page is reachable on " + address);
                    }
                }
            }
        }
    }

    @Test
    void prometheusScrapesTheManagementPort() {
        given().port(METRICS_TEST_PORT).accept("text/plain; version=0.0.4").get("/metrics").then()
                .statusCode(200)
                .contentType(containsString("text/plain"))
                .body(containsString("jvm_memory_used_bytes"));
    }
}
