package dev.ambient.cni;

import io.quarkus.test.junit.QuarkusIntegrationTest;

/** Runs the same checks against the packaged jar, started as a user would start it. */
@QuarkusIntegrationTest
class PackagedAppIT extends ServiceEndpointsTest {
}
