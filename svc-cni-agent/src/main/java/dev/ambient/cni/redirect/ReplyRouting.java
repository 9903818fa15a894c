package dev.ambient.cni.redirect;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The pod's policy routing for the application's replies to the ztunnel's transparent sockets:
 * packets carrying the reply mark (restored from the connection by the mangle rules) look up a
 * table whose only route is {@code local default dev lo}, so a reply to the client's address,
 * which the pod does not have, is delivered to the ztunnel's socket in the pod instead of leaving
 * through eth0. One {@code ip rule} and one route, added only if missing and removed exactly
 * (someone else's rules and routes, also in the same table, stay). Blocking: worker threads only.
 */
final class ReplyRouting {

    /** Before the main table (32766), after the local one (0): replies must not take the default route. */
    static final int PRIORITY = 32764;

    private final RedirectSettings settings;
    private final NetnsCommand command;
    private final InPodRedirection.Family family;

    ReplyRouting(RedirectSettings settings, NetnsCommand command, InPodRedirection.Family family) {
        this.settings = settings;
        this.command = command;
        this.family = family;
    }

    static String hex(int value) {
        return "0x" + Integer.toHexString(value);
    }

    /** The selector as {@code ip rule show} prints it (and {@code ip rule add/del} take it). */
    private String ruleSelector() {
        return "fwmark " + hex(settings.replyMark()) + "/" + hex(settings.replyMarkMask()) + " lookup "
                + settings.replyTable();
    }

    void install(Path netns) throws IOException {
        if (!hasRoute(netns)) {
            command.run(netns, null, "ip", family.ip(), "route", "add", "local", family.everywhere(), "dev", "lo", "table",
                    Integer.toString(settings.replyTable()));
        }
        if (ruleCount(netns) == 0) {
            command.run(netns, null, ("ip " + family.ip() + " rule add " + ruleSelector() + " pref " + PRIORITY)
                    .split(" "));
        }
    }

    /** Removes our rule (every copy) and route; false when neither was there. */
    boolean remove(Path netns) throws IOException {
        long rules = ruleCount(netns);
        for (long i = 0; i < rules; i++) {
            command.run(netns, null, ("ip " + family.ip() + " rule del " + ruleSelector()).split(" "));
        }
        boolean route = hasRoute(netns);
        if (route) {
            command.run(netns, null, "ip", family.ip(), "route", "del", "local", family.everywhere(), "dev", "lo", "table",
                    Integer.toString(settings.replyTable()));
        }
        return rules > 0 || route;
    }

    boolean installed(Path netns) throws IOException {
        return ruleCount(netns) > 0 && hasRoute(netns);
    }

    private long ruleCount(Path netns) throws IOException {
        String wanted = "from all " + ruleSelector();
        return command.run(netns, null, "ip", family.ip(), "rule", "show").lines()
                .filter(l -> l.substring(l.indexOf(':') + 1).strip().equals(wanted)).count();
    }

    private boolean hasRoute(Path netns) throws IOException {
        // "show table N" fails while the table is empty (it does not exist then): list them all.
        // IPv6 adds "metric 1024 pref medium" after the same start.
        String wanted = "local default dev lo table " + settings.replyTable() + " ";
        return command.run(netns, null, "ip", family.ip(), "route", "show", "table", "all").lines()
                .anyMatch(l -> (l.strip() + " ").startsWith(wanted));
    }
}
