package dev.ambient.xds.translate;

import dev.ambient.xds.model.MeshSnapshot;
import java.util.List;

/** The result of one translation: what is served, and what was wrong with the input (sorted). */
public record Translation(MeshSnapshot snapshot, List<Problem> problems) {

    public Translation {
        problems = List.copyOf(problems);
    }
}
