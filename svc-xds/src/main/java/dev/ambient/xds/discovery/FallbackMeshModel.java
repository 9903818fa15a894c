package dev.ambient.xds.discovery;

import dev.ambient.xds.model.MeshModel;
import dev.ambient.xds.model.MeshSnapshot;
import io.quarkus.arc.DefaultBean;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import java.util.function.Consumer;

/**
 * An empty, synced model, used only when no other {@link MeshModel} bean exists (the sources in
 * {@code dev.ambient.xds.source} provide the real one and replace this default).
 */
@ApplicationScoped
public class FallbackMeshModel {

    @Produces
    @DefaultBean
    @ApplicationScoped
    MeshModel emptyMeshModel() {
        return new MeshModel() {
            @Override
            public MeshSnapshot current() {
                return MeshSnapshot.EMPTY;
            }

            @Override
            public void addListener(Consumer<MeshSnapshot> listener) {
                // never changes
            }

            @Override
            public boolean synced() {
                return true;
            }
        };
    }
}
