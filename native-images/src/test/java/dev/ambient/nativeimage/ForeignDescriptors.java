package dev.ambient.nativeimage;

import com.fasterxml.jackson.databind.JsonNode;
import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.GroupLayout;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.PaddingLayout;
import java.lang.foreign.SequenceLayout;
import java.lang.foreign.StructLayout;
import java.lang.foreign.UnionLayout;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Function descriptors written the way GraalVM's reachability metadata writes them
 * ({@code "int(int, void*) captureCallState"}), so that what the code creates and what
 * {@code reachability-metadata.json} registers compare as strings. Both sides are normalized
 * through this platform's canonical layouts: {@code size_t} and {@code long} are the same
 * 8-byte integer on Linux x64, and GraalVM resolves the names the same way.
 */
final class ForeignDescriptors {

    private static final Map<String, MemoryLayout> CANONICAL = Linker.nativeLinker().canonicalLayouts();

    private ForeignDescriptors() {
    }

    /** What the code asked for: a descriptor and the options that change the stub. */
    static String describe(FunctionDescriptor fd, boolean captureCallState, boolean critical,
            boolean allowHeapAccess, int firstVariadicArg) {
        StringBuilder s = new StringBuilder();
        s.append(fd.returnLayout().map(ForeignDescriptors::layout).orElse("void"));
        s.append(fd.argumentLayouts().stream().map(ForeignDescriptors::layout)
                .collect(Collectors.joining(", ", "(", ")")));
        if (captureCallState) {
            s.append(" captureCallState");
        }
        if (critical) {
            s.append(allowHeapAccess ? " critical(heap)" : " critical");
        }
        if (firstVariadicArg >= 0) {
            s.append(" firstVariadicArg=").append(firstVariadicArg);
        }
        return s.toString();
    }

    /** One entry of {@code "foreign": {"downcalls": [...]}} in a reachability-metadata.json. */
    static String describe(JsonNode downcall) {
        String ret = downcall.path("returnType").asText("void");
        List<MemoryLayout> params = new ArrayList<>();
        for (JsonNode p : downcall.path("parameterTypes")) {
            params.add(parse(p.asText()));
        }
        FunctionDescriptor fd = ret.equals("void")
                ? FunctionDescriptor.ofVoid(params.toArray(MemoryLayout[]::new))
                : FunctionDescriptor.of(parse(ret), params.toArray(MemoryLayout[]::new));
        JsonNode options = downcall.path("options");
        JsonNode critical = options.path("critical");
        boolean isCritical = critical.isObject() || critical.asBoolean(false);
        boolean heap = critical.path("allowHeapAccess").asBoolean(false);
        int variadic = options.has("firstVariadicArg") ? options.get("firstVariadicArg").asInt() : -1;
        return describe(fd, options.path("captureCallState").asBoolean(false), isCritical, heap, variadic);
    }

    static String layout(MemoryLayout l) {
        return switch (l) {
            case AddressLayout a -> "void*";
            case ValueLayout v -> aligned(v, valueName(v));
            case StructLayout s -> aligned(s, group("struct", s));
            case UnionLayout u -> aligned(u, group("union", u));
            case SequenceLayout q -> aligned(q, "sequence(" + q.elementCount() + ", " + layout(q.elementLayout()) + ")");
            case PaddingLayout p -> "padding(" + p.byteSize() + ")";
            default -> throw new IllegalArgumentException("unknown layout " + l);
        };
    }

    private static String group(String kind, GroupLayout g) {
        return g.memberLayouts().stream().map(ForeignDescriptors::layout)
                .collect(Collectors.joining(", ", kind + "(", ")"));
    }

    private static String valueName(ValueLayout v) {
        Class<?> c = v.carrier();
        if (c == boolean.class) return "bool";
        if (c == byte.class) return "char";
        if (c == short.class) return "short";
        if (c == char.class) return "jchar";
        if (c == int.class) return "int";
        if (c == long.class) return "long";
        if (c == float.class) return "float";
        if (c == double.class) return "double";
        throw new IllegalArgumentException("no C type for carrier " + c);
    }

    /** Only an alignment other than the layout's natural one is written out. */
    private static String aligned(MemoryLayout l, String text) {
        long natural = naturalAlignment(l);
        return l.byteAlignment() == natural ? text : "align(" + l.byteAlignment() + ", " + text + ")";
    }

    private static long naturalAlignment(MemoryLayout l) {
        return switch (l) {
            case ValueLayout v -> v.byteSize();
            case GroupLayout g -> g.memberLayouts().stream().mapToLong(MemoryLayout::byteAlignment).max().orElse(1);
            case SequenceLayout q -> q.elementLayout().byteAlignment();
            default -> 1;
        };
    }

    /** GraalVM's layout syntax: canonical names, struct(...), union(...), sequence(n, l), padding(n), align(n, l). */
    static MemoryLayout parse(String text) {
        Parser p = new Parser(text);
        MemoryLayout l = p.layout();
        p.skipSpace();
        if (p.pos != text.length()) {
            throw new IllegalArgumentException("unexpected '" + text.substring(p.pos) + "' in layout " + text);
        }
        return l;
    }

    private static final class Parser {
        private final String s;
        private int pos;

        Parser(String s) {
            this.s = s;
        }

        MemoryLayout layout() {
            skipSpace();
            String word = word();
            switch (word) {
                case "struct", "union" -> {
                    List<MemoryLayout> members = list();
                    MemoryLayout[] m = members.toArray(MemoryLayout[]::new);
                    return word.equals("struct") ? MemoryLayout.structLayout(m) : MemoryLayout.unionLayout(m);
                }
                case "sequence" -> {
                    expect('(');
                    long n = number();
                    expect(',');
                    MemoryLayout element = layout();
                    expect(')');
                    return MemoryLayout.sequenceLayout(n, element);
                }
                case "padding" -> {
                    expect('(');
                    long n = number();
                    expect(')');
                    return MemoryLayout.paddingLayout(n);
                }
                case "align" -> {
                    expect('(');
                    long n = number();
                    expect(',');
                    MemoryLayout inner = layout();
                    expect(')');
                    return inner.withByteAlignment(n);
                }
                default -> {
                    MemoryLayout c = CANONICAL.get(word);
                    if (c == null) {
                        throw new IllegalArgumentException("'" + word + "' is not a canonical C type on this platform");
                    }
                    return c;
                }
            }
        }

        private List<MemoryLayout> list() {
            expect('(');
            List<MemoryLayout> out = new ArrayList<>();
            skipSpace();
            if (peek() == ')') {
                pos++;
                return out;
            }
            while (true) {
                out.add(layout());
                skipSpace();
                char c = s.charAt(pos++);
                if (c == ')') {
                    return out;
                }
                if (c != ',') {
                    throw new IllegalArgumentException("expected ',' or ')' at " + (pos - 1) + " in " + s);
                }
            }
        }

        /** A canonical name may hold spaces and a star: "long long", "void*". */
        private String word() {
            int start = pos;
            while (pos < s.length() && "(),".indexOf(s.charAt(pos)) < 0) {
                pos++;
            }
            return s.substring(start, pos).trim();
        }

        private long number() {
            skipSpace();
            int start = pos;
            while (pos < s.length() && Character.isDigit(s.charAt(pos))) {
                pos++;
            }
            return Long.parseLong(s.substring(start, pos));
        }

        private void expect(char c) {
            skipSpace();
            if (peek() != c) {
                throw new IllegalArgumentException("expected '" + c + "' at " + pos + " in " + s);
            }
            pos++;
        }

        private char peek() {
            return pos < s.length() ? s.charAt(pos) : '\0';
        }

        void skipSpace() {
            while (pos < s.length() && s.charAt(pos) == ' ') {
                pos++;
            }
        }
    }
}
