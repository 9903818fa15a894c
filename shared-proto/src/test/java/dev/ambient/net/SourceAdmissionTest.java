package dev.ambient.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The decisions of {@link SourceAdmission}: per source, in all, and who makes room when all is taken. */
class SourceAdmissionTest {

    private final List<String> closed = new ArrayList<>();

    private SourceAdmission.Decision admit(SourceAdmission admission, String source, String connection) {
        return admission.admit(source, () -> closed.add(connection));
    }

    @Test
    void aSourceGetsNoMoreThanItsBoundAndItsPlacesComeBack() {
        SourceAdmission admission = new SourceAdmission(2, 10);
        var first = assertInstanceOf(SourceAdmission.Admitted.class, admit(admission, "10.0.0.1", "a1"));
        assertInstanceOf(SourceAdmission.Admitted.class, admit(admission, "10.0.0.1", "a2"));
        var refused = assertInstanceOf(SourceAdmission.Refused.class, admit(admission, "10.0.0.1", "a3"));
        assertEquals(ListenerLimit.PER_SOURCE, refused.limit());
        assertInstanceOf(SourceAdmission.Admitted.class, admit(admission, "10.0.0.2", "b1"));

        first.place().release();
        first.place().release();
        assertEquals(1, admission.held("10.0.0.1"));
        assertEquals(2, admission.held());
        assertInstanceOf(SourceAdmission.Admitted.class, admit(admission, "10.0.0.1", "a4"));
        assertEquals(List.of(), closed);
    }

    @Test
    void whenAllIsTakenTheLargestHolderMakesRoomForASmallOne() {
        SourceAdmission admission = new SourceAdmission(4, 6);
        for (int i = 0; i < 4; i++) {
            admit(admission, "10.0.0.9", "hostile" + i);
        }
        admit(admission, "10.0.0.8", "other0");
        admit(admission, "10.0.0.8", "other1");

        // The kubelet: the hostile source's oldest connection is closed for it.
        var kubelet = assertInstanceOf(SourceAdmission.Admitted.class, admit(admission, "10.0.0.1", "kubelet"));
        assertEquals("10.0.0.9", kubelet.displaced().source());
        assertEquals(List.of("hostile0"), closed);
        assertEquals(6, admission.held());

        // A displaced place released later (its close handler) frees nothing twice.
        kubelet.displaced().release();
        assertEquals(6, admission.held());
        assertEquals(3, admission.held("10.0.0.9"));

        // Holders of 3, 2, 1: another newcomer still displaces the largest (3 >= 0 + 2) ...
        var prometheus = assertInstanceOf(SourceAdmission.Admitted.class, admit(admission, "10.0.0.2", "prometheus"));
        assertEquals("10.0.0.9", prometheus.displaced().source());
        // ... but 2, 2, 1, 1 leave no one holding two more than a holder of one: refused in all.
        var refused = assertInstanceOf(SourceAdmission.Refused.class, admit(admission, "10.0.0.2", "prometheus2"));
        assertEquals(ListenerLimit.TOTAL, refused.limit());
        assertEquals(List.of("hostile0", "hostile1"), closed);
    }

    @Test
    void roomUnderTheTotalDisplacesNobody() {
        SourceAdmission admission = new SourceAdmission(3, 3);
        var a = assertInstanceOf(SourceAdmission.Admitted.class, admit(admission, "10.0.0.1", "a"));
        assertNull(a.displaced());
        assertThrows(IllegalArgumentException.class, () -> new SourceAdmission(4, 3));
    }
}
