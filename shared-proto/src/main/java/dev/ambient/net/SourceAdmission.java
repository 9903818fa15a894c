package dev.ambient.net;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Who may hold one of a listener's places: at most {@code perSource} connections per source
 * address and {@code total} in all. When every place is taken, a source holding fewer than the
 * largest holder less one still gets in: the largest holder's oldest connection is closed for it,
 * so a few hostile sources filling the total cannot starve one that asks for little (a kubelet
 * probing, a Prometheus scraping); only as many hostile sources as there are places could.
 * Thread-safe; called once per accepted connection, never per byte.
 */
public final class SourceAdmission {

    /** The outcome of one accept. */
    public sealed interface Decision {
    }

    /** Admitted: release the place when the connection closes. {@code displaced} is closed already, or null. */
    public record Admitted(Place place, Place displaced) implements Decision {
    }

    /** Refused: close the connection at once. */
    public record Refused(ListenerLimit limit, int held) implements Decision {
    }

    /** One admitted connection's place. */
    public final class Place {
        private final String source;
        private final Runnable close;
        private boolean held = true;

        private Place(String source, Runnable close) {
            this.source = source;
            this.close = close;
        }

        public String source() {
            return source;
        }

        /** Frees the place; again (or after a displacement) does nothing. */
        public void release() {
            synchronized (SourceAdmission.this) {
                if (!held) {
                    return;
                }
                held = false;
                ArrayDeque<Place> places = bySource.get(source);
                places.remove(this);
                if (places.isEmpty()) {
                    bySource.remove(source);
                }
                total--;
            }
        }
    }

    private final int perSource;
    private final int bound;
    private final Map<String, ArrayDeque<Place>> bySource = new HashMap<>();
    private int total;

    public SourceAdmission(int perSource, int total) {
        if (perSource < 1 || total < perSource) {
            throw new IllegalArgumentException("need 1 <= per-source (" + perSource + ") <= total (" + total + ")");
        }
        this.perSource = perSource;
        this.bound = total;
    }

    /** One accepted connection from {@code source}; {@code close} closes it should it be displaced later. */
    public Decision admit(String source, Runnable close) {
        Place displaced;
        Place admitted;
        synchronized (this) {
            ArrayDeque<Place> own = bySource.get(source);
            int held = own == null ? 0 : own.size();
            if (held >= perSource) {
                return new Refused(ListenerLimit.PER_SOURCE, held);
            }
            displaced = null;
            if (total >= bound) {
                ArrayDeque<Place> largest = largestHolder();
                if (largest.size() < held + 2) {
                    return new Refused(ListenerLimit.TOTAL, total);
                }
                displaced = largest.peekFirst();
                displaced.held = false;
                largest.removeFirst();
                if (largest.isEmpty()) {
                    bySource.remove(displaced.source);
                }
                total--;
            }
            admitted = new Place(source, close);
            bySource.computeIfAbsent(source, s -> new ArrayDeque<>()).addLast(admitted);
            total++;
        }
        if (displaced != null) {
            displaced.close.run();
        }
        return new Admitted(admitted, displaced);
    }

    private ArrayDeque<Place> largestHolder() {
        ArrayDeque<Place> largest = null;
        for (ArrayDeque<Place> places : bySource.values()) {
            if (largest == null || places.size() > largest.size()) {
                largest = places;
            }
        }
        return largest;
    }

    public synchronized int held() {
        return total;
    }

    public synchronized int held(String source) {
        ArrayDeque<Place> own = bySource.get(source);
        return own == null ? 0 : own.size();
    }

    public int perSource() {
        return perSource;
    }

    public int total() {
        return bound;
    }
}
