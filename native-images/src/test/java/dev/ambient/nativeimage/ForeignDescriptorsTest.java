package dev.ambient.nativeimage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class ForeignDescriptorsTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void codeAndMetadataDescribeTheSameDowncallAlike() throws Exception {
        String fromCode = ForeignDescriptors.describe(FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT), true, false, false, -1);
        String fromJson = ForeignDescriptors.describe(JSON.readTree("""
                {"returnType": "size_t", "parameterTypes": ["int", "void*", "int"],
                 "options": {"captureCallState": true}}"""));
        assertEquals("long(int, void*, int) captureCallState", fromCode);
        assertEquals(fromCode, fromJson);
    }

    @Test
    void optionsMakeDifferentStubs() throws Exception {
        String plain = ForeignDescriptors.describe(JSON.readTree("""
                {"returnType": "int", "parameterTypes": ["int"]}"""));
        String captured = ForeignDescriptors.describe(JSON.readTree("""
                {"returnType": "int", "parameterTypes": ["int"], "options": {"captureCallState": true}}"""));
        String variadic = ForeignDescriptors.describe(JSON.readTree("""
                {"returnType": "void", "parameterTypes": ["void*", "int"],
                 "options": {"firstVariadicArg": 1, "critical": {"allowHeapAccess": true}}}"""));
        assertEquals("int(int)", plain);
        assertEquals("int(int) captureCallState", captured);
        assertEquals("void(void*, int) critical(heap) firstVariadicArg=1", variadic);
    }

    @Test
    void structuredLayoutsRoundTrip() {
        String text = "struct(char, padding(7), void*, sequence(10, union(long, double)))";
        MemoryLayout l = ForeignDescriptors.parse(text);
        assertEquals(1 + 7 + 8 + 80, l.byteSize());
        assertEquals(text, ForeignDescriptors.layout(l));
        assertEquals("align(1, int)", ForeignDescriptors.layout(ValueLayout.JAVA_INT_UNALIGNED));
    }

    @Test
    void anUnknownCTypeIsRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ForeignDescriptors.parse("uint128"));
        assertEquals("'uint128' is not a canonical C type on this platform", e.getMessage());
    }
}
