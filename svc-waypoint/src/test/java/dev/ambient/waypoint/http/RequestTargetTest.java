package dev.ambient.waypoint.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class RequestTargetTest {

    @Test
    void policyAndTheApplicationSeeTheSamePath() {
        assertEquals("/admin", RequestTarget.normalize("/public/../admin"));
        assertEquals("/admin/x", RequestTarget.normalize("/./admin/./x"));
        assertEquals("/admin", RequestTarget.normalize("/%2e%2e/admin"), "encoded dots are dots");
        assertEquals("/admin", RequestTarget.normalize("/../../admin"), "no climbing above the root");
        assertEquals("/a/", RequestTarget.normalize("/a/b/.."));
        assertEquals("/admin?x=../y", RequestTarget.normalize("http://svc.local:80/admin?x=../y"), "absolute-form");
        assertEquals("/?q=1", RequestTarget.normalize("http://svc?q=1"));
        assertEquals("/a%2Fb", RequestTarget.normalize("/a%2fb"), "an encoded slash stays encoded");
        assertEquals("/caf%C3%A9", RequestTarget.normalize("/caf%c3%a9"));
        assertEquals("/~user", RequestTarget.normalize("/%7Euser"));
        assertEquals("/items/42", RequestTarget.normalize("/items/42"));
        assertEquals("*", RequestTarget.normalize("*"));
        assertNull(RequestTarget.normalize("admin"));
        assertNull(RequestTarget.normalize("/bad%zz"));
        assertNull(RequestTarget.normalize("/cut%2"));
    }
}
