package dev.ambient.xds;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

/**
 * What a kubelet and a Prometheus see of this service: probes and a metrics page. (Also where the
 * test TLS material of every test application is declared: {@link XdsTestTls}, for all tests.)
 */
@QuarkusTest
@QuarkusTestResource(value = XdsTestTls.class, restrictToAnnotatedClass = false)
class ServiceEndpointsTest {

    static final int METRICS_TEST_PORT = 57014;

    @Test
    void readinessAndLivenessAnswerUp() {
        given().get("/healthz/ready").then().statusCode(200).body("status", equalTo("UP"));
        given().get("/healthz/live").then().statusCode(200).body("status", equalTo("UP"));
    }

    @Test
    void prometheusScrapesTheManagementPort() {
        given().port(METRICS_TEST_PORT).accept("text/plain; version=0.0.4").get("/metrics").then()
                .statusCode(200)
                .contentType(containsString("text/plain"))
                .body(containsString("jvm_memory_used_bytes"));
    }
}
