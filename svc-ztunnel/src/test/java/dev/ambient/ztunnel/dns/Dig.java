package dev.ambient.ztunnel.dns;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Debian's dig (bind9-dnsutils) as an independent client: its answer section, status and flags. */
public record Dig(String output, String status, List<String> flags, List<String> answers, long millis) {

    /** Runs {@code dig @server -p port args...} (optionally inside a network namespace) and reads its output. */
    public static Dig run(String netns, String server, int port, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        if (netns != null) {
            cmd.addAll(List.of("ip", "netns", "exec", netns));
        }
        cmd.addAll(List.of("dig", "@" + server, "-p", Integer.toString(port), "+tries=1", "+time=3"));
        cmd.addAll(List.of(args));
        return exec(cmd);
    }

    static Dig exec(List<String> cmd) throws Exception {
        long start = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor(20, TimeUnit.SECONDS);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        String status = "";
        List<String> flags = List.of();
        List<String> answers = new ArrayList<>();
        boolean inAnswer = false;
        for (String line : out.split("\n")) {
            if (line.contains("status: ")) {
                status = line.replaceAll(".*status: ([A-Z]+).*", "$1");
            }
            if (line.startsWith(";; flags:")) {
                flags = List.of(line.replaceAll(";; flags: ([a-z ]+);.*", "$1").trim().split(" "));
            }
            if (line.startsWith(";; ANSWER SECTION:")) {
                inAnswer = true;
            } else if (line.isBlank()) {
                inAnswer = false;
            } else if (inAnswer) {
                answers.add(line.trim().replaceAll("\\s+", " "));
            }
        }
        return new Dig(out, status, flags, answers, millis);
    }

    /** The data of each answer record ("10.96.0.20"). */
    public List<String> data() {
        return answers.stream().map(a -> a.substring(a.lastIndexOf(' ') + 1)).toList();
    }

    /** The TTL of the first answer. */
    public long ttl() {
        return Long.parseLong(answers.getFirst().split(" ")[1]);
    }
}
