package dev.ambient.waypoint;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

/**
 * What a kubelet and a Prometheus see of this service: probes and a metrics page. Started without
 * a control plane, the waypoint is alive but not ready, and says why.
 */
@QuarkusTest
class ServiceEndpointsTest {

    static final int METRICS_TEST_PORT = 58020;

    @Test
    void aliveButNotReadyWithoutConfiguration() {
        given().get("/healthz/live").then().statusCode(200).body("status", equalTo("UP"));
        given().get("/healthz/ready").then().statusCode(503).body("status", equalTo("DOWN"))
                .body(containsString("no configuration"));
    }

    @Test
    void prometheusScrapesTheManagementPort() {
        given().port(METRICS_TEST_PORT).accept("text/plain; version=0.0.4").get("/metrics").then()
                .statusCode(200)
                .contentType(containsString("text/plain"))
                .body(containsString("jvm_memory_used_bytes"))
                .body(containsString("waypoint_active_requests"));
    }
}
