package dev.ambient.waypoint;

import java.util.List;
import java.util.logging.Handler;
import java.util.logging.LogRecord;

/** Adds each line a logging category writes, formatted as written, to a list a test reads (the access log). */
final class LogCapture extends Handler {

    private final List<String> into;

    /** @param into a list safe to add to from any thread */
    LogCapture(List<String> into) {
        this.into = into;
    }

    @Override
    public void publish(LogRecord r) {
        into.add(r.getParameters() == null ? r.getMessage() : String.format(r.getMessage(), r.getParameters()));
    }

    @Override
    public void flush() {
    }

    @Override
    public void close() {
    }
}
