package dev.ambient.xds.source;

import dev.ambient.xds.model.MeshModel;
import dev.ambient.xds.translate.Problem;
import java.util.List;

/** A {@link MeshModel} fed from somewhere (the Kubernetes API, a directory), that can be started and closed. */
public interface MeshSource extends MeshModel, AutoCloseable {

    /** Starts reading the source in the background; returns at once. */
    void start();

    /** What is wrong with the input right now (bad resources, unreadable files), sorted. */
    List<Problem> problems();

    @Override
    void close();
}
