package dev.ambient.ztunnel.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.ambient.proto.workload.Workload;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

class WorkloadStoreTest {

    @Test
    void replaceSwapsAndTellsListenersOnTheUpdatingThread() {
        WorkloadStore store = new WorkloadStore();
        assertSame(StateSnapshot.EMPTY, store.current());
        StateSnapshot next = StateSnapshot.of(List.of(Workload.newBuilder().setUid("u").build()), List.of(),
                List.of(), List.of());
        List<String> seen = new ArrayList<>();
        Thread caller = Thread.currentThread();
        store.addListener(s -> {
            throw new IllegalStateException("a broken listener must not stop the others");
        });
        store.addListener(s -> {
            assertSame(s, store.current(), "the swap happens before listeners run");
            assertSame(caller, Thread.currentThread());
            seen.add("second:" + s.workloads().size());
        });
        Consumer<StateSnapshot> removed = s -> seen.add("removed");
        store.addListener(removed);
        store.removeListener(removed);

        store.replace(next);

        assertSame(next, store.current());
        assertEquals(List.of("second:1"), seen);
    }
}
