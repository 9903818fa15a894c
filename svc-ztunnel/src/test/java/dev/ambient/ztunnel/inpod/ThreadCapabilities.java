package dev.ambient.ztunnel.inpod;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Linux capabilities belong to each thread: this drops CAP_NET_ADMIN and CAP_NET_RAW (either
 * allows IP_TRANSPARENT) from the calling thread's effective set, and raises them again from the
 * permitted set, so a test can take from the ztunnel's socket threads exactly what a ztunnel
 * without those capabilities lacks, while the rest of the process keeps them.
 */
final class ThreadCapabilities {

    private static final int VERSION_3 = 0x20080522;
    private static final int NET_CAPS = 1 << 12 | 1 << 13; // CAP_NET_ADMIN, CAP_NET_RAW
    private static final MethodHandle CAPGET;
    private static final MethodHandle CAPSET;

    static {
        Linker linker = Linker.nativeLinker();
        FunctionDescriptor fd = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
        CAPGET = linker.downcallHandle(linker.defaultLookup().find("capget").orElseThrow(), fd);
        CAPSET = linker.downcallHandle(linker.defaultLookup().find("capset").orElseThrow(), fd);
    }

    private ThreadCapabilities() {
    }

    /** Sets or clears CAP_NET_ADMIN and CAP_NET_RAW in the calling thread's effective set. */
    static void netAdmin(boolean effective) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment header = arena.allocate(8);
            header.set(JAVA_INT, 0, VERSION_3);
            header.set(JAVA_INT, 4, 0); // this thread
            MemorySegment data = arena.allocate(24); // two {effective, permitted, inheritable}
            if ((int) CAPGET.invokeExact(header, data) != 0) {
                throw new IllegalStateException("capget failed");
            }
            int e = data.get(JAVA_INT, 0);
            data.set(JAVA_INT, 0, effective ? e | NET_CAPS : e & ~NET_CAPS);
            if ((int) CAPSET.invokeExact(header, data) != 0) {
                throw new IllegalStateException("capset failed");
            }
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
