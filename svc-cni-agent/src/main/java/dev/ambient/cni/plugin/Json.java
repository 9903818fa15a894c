package dev.ambient.cni.plugin;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Just enough JSON for the CNI plugin, which must start fast and so carries no JSON library:
 * parses objects, arrays, strings, numbers, booleans and null; remembers the exact text of each
 * top-level member, so the previous plugin's result is passed on byte for byte.
 */
final class Json {

    /** A parsed top-level object and the raw text of each member's value. */
    record Parsed(Map<String, Object> object, Map<String, String> raw) {
    }

    static final class Invalid extends Exception {
        Invalid(String message) {
            super(message);
        }
    }

    private final String s;
    private int i;

    private Json(String s) {
        this.s = s;
    }

    static Parsed parseObject(String text) throws Invalid {
        Json p = new Json(text);
        p.ws();
        if (p.i >= p.s.length() || p.s.charAt(p.i) != '{') {
            throw new Invalid("expected a JSON object");
        }
        Map<String, String> raw = new LinkedHashMap<>();
        Map<String, Object> obj = p.object(raw);
        p.ws();
        if (p.i != p.s.length()) {
            throw new Invalid("trailing text at offset " + p.i);
        }
        return new Parsed(obj, raw);
    }

    private Object value() throws Invalid {
        ws();
        if (i >= s.length()) {
            throw new Invalid("unexpected end of input");
        }
        char c = s.charAt(i);
        return switch (c) {
            case '{' -> object(null);
            case '[' -> array();
            case '"' -> string();
            case 't' -> literal("true", Boolean.TRUE);
            case 'f' -> literal("false", Boolean.FALSE);
            case 'n' -> literal("null", null);
            default -> number();
        };
    }

    private Map<String, Object> object(Map<String, String> raw) throws Invalid {
        Map<String, Object> out = new LinkedHashMap<>();
        i++;
        ws();
        if (peek() == '}') {
            i++;
            return out;
        }
        while (true) {
            ws();
            if (peek() != '"') {
                throw new Invalid("expected a member name at offset " + i);
            }
            String key = string();
            ws();
            expect(':');
            ws();
            int start = i;
            out.put(key, value());
            if (raw != null) {
                raw.put(key, s.substring(start, i));
            }
            ws();
            char c = next();
            if (c == '}') {
                return out;
            }
            if (c != ',') {
                throw new Invalid("expected ',' or '}' at offset " + (i - 1));
            }
        }
    }

    private List<Object> array() throws Invalid {
        List<Object> out = new ArrayList<>();
        i++;
        ws();
        if (peek() == ']') {
            i++;
            return out;
        }
        while (true) {
            out.add(value());
            ws();
            char c = next();
            if (c == ']') {
                return out;
            }
            if (c != ',') {
                throw new Invalid("expected ',' or ']' at offset " + (i - 1));
            }
        }
    }

    private String string() throws Invalid {
        expect('"');
        StringBuilder b = new StringBuilder();
        while (true) {
            char c = next();
            if (c == '"') {
                return b.toString();
            }
            if (c == '\\') {
                char e = next();
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> {
                        if (i + 4 > s.length()) {
                            throw new Invalid("bad \\u escape");
                        }
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> b.append(e);
                }
            } else {
                b.append(c);
            }
        }
    }

    private Object number() throws Invalid {
        int start = i;
        while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
            i++;
        }
        if (start == i) {
            throw new Invalid("unexpected '" + s.charAt(i) + "' at offset " + i);
        }
        try {
            return Double.parseDouble(s.substring(start, i));
        } catch (NumberFormatException e) {
            throw new Invalid("bad number at offset " + start);
        }
    }

    private Object literal(String word, Object v) throws Invalid {
        if (!s.startsWith(word, i)) {
            throw new Invalid("unexpected text at offset " + i);
        }
        i += word.length();
        return v;
    }

    private void ws() {
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
            i++;
        }
    }

    private char peek() throws Invalid {
        if (i >= s.length()) {
            throw new Invalid("unexpected end of input");
        }
        return s.charAt(i);
    }

    private char next() throws Invalid {
        char c = peek();
        i++;
        return c;
    }

    private void expect(char c) throws Invalid {
        if (next() != c) {
            throw new Invalid("expected '" + c + "' at offset " + (i - 1));
        }
    }

    /** A JSON string literal. */
    static String quote(String v) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : v.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }
}
