package dev.ambient.nativeimage;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Finds the exact descriptors a class creates downcall handles for, by running its static
 * initializer and reading the JDK linker's cache of link requests (every
 * {@code Linker.downcallHandle} goes through it). No parsing of Java code can see a descriptor
 * built through helper methods or shared constants; running the code can. Each class is loaded
 * in a fresh class loader, so one class's initializer never hides another's requests.
 *
 * <p>Needs {@code --add-opens=java.base/jdk.internal.foreign.abi=ALL-UNNAMED} (JDK internals:
 * when they change, this class says so instead of passing).
 */
final class DowncallProbe {

    private DowncallProbe() {
    }

    /** Descriptors (as {@link ForeignDescriptors} writes them) that initializing {@code className} creates. */
    static synchronized Set<String> downcallsCreatedBy(String className, List<URL> classpath) {
        Map<?, ?> cache = linkRequestCache();
        cache.clear();
        try (URLClassLoader loader = new URLClassLoader(classpath.toArray(URL[]::new),
                ClassLoader.getPlatformClassLoader())) {
            Class.forName(className, true, loader);
            Set<String> out = new TreeSet<>();
            for (Object request : List.copyOf(cache.keySet())) {
                out.add(describe(request));
            }
            return out;
        } catch (ReflectiveOperationException | java.io.IOException e) {
            throw new IllegalStateException("cannot initialize " + className + ": " + e, e);
        } catch (ExceptionInInitializerError e) {
            throw new IllegalStateException("the static initializer of " + className + " failed: " + e.getCause(), e);
        } finally {
            cache.clear();
        }
    }

    private static Map<?, ?> linkRequestCache() {
        try {
            Class<?> abstractLinker = Class.forName("jdk.internal.foreign.abi.AbstractLinker");
            Field f = abstractLinker.getDeclaredField("DOWNCALL_CACHE");
            f.setAccessible(true);
            Object softCache = f.get(Linker.nativeLinker());
            Field map = softCache.getClass().getDeclaredField("cache");
            map.setAccessible(true);
            return (Map<?, ?>) map.get(softCache);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("the JDK's linker internals are not what DowncallProbe expects (JDK "
                    + Runtime.version() + "); update it: " + e, e);
        }
    }

    private static String describe(Object linkRequest) throws ReflectiveOperationException {
        FunctionDescriptor fd = (FunctionDescriptor) call(linkRequest, "descriptor");
        Object options = call(linkRequest, "options");
        boolean capture = (boolean) call(options, "hasCapturedCallState");
        boolean critical = (boolean) call(options, "isCritical");
        boolean heap = critical && (boolean) call(options, "allowsHeapAccess");
        int variadic = (boolean) call(options, "isVariadicFunction") ? (int) call(options, "firstVariadicArgIndex") : -1;
        return ForeignDescriptors.describe(fd, capture, critical, heap, variadic);
    }

    private static Object call(Object target, String method) throws ReflectiveOperationException {
        Method m = target.getClass().getDeclaredMethod(method);
        m.setAccessible(true);
        return m.invoke(target);
    }
}
