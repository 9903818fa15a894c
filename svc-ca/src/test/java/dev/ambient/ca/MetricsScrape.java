package dev.ambient.ca;

import static io.restassured.RestAssured.given;

/** Reads one sample from the Prometheus page on the management test port. */
final class MetricsScrape {

    private MetricsScrape() {}

    /** The value of the sample {@code name} without labels, 0 when absent. */
    static double value(String name) {
        return value(name, null);
    }

    /** The value of the sample {@code name} whose labels include {@code label} (e.g. {@code reason="x"}), 0 when absent. */
    static double value(String name, String label) {
        String page = given().port(ServiceEndpointsTest.METRICS_TEST_PORT).accept("text/plain; version=0.0.4")
                .get("/metrics").then().statusCode(200).extract().asString();
        for (String line : page.split("\n")) {
            boolean plain = label == null && line.startsWith(name + " ");
            boolean labelled = label != null && line.startsWith(name + "{") && line.substring(0, line.indexOf('}') + 1).contains(label);
            if (plain || labelled) {
                String[] fields = line.substring(line.lastIndexOf(label == null ? name : "}") + (label == null ? name.length() : 1))
                        .trim().split(" ");
                return Double.parseDouble(fields[0]);
            }
        }
        return 0;
    }
}
