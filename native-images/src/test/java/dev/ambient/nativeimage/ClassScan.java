package dev.ambient.nativeimage;

import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeElement;
import java.lang.classfile.MethodModel;
import java.lang.classfile.constantpool.ClassEntry;
import java.lang.classfile.constantpool.PoolEntry;
import java.lang.classfile.instruction.ConstantInstruction;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.classfile.instruction.NewObjectInstruction;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** What one class file does that native-image must be told about, read from its bytecode. */
record ClassScan(String name, Set<String> references, List<String> downcallSites, List<String> upcallSites,
        Set<String> resourceLookups, List<String> staticInitHazards) {

    /** Objects native-image refuses in the image heap (or that would freeze a seed or a thread there). */
    private static final Set<String> HAZARDOUS_NEW = Set.of("java/security/SecureRandom", "java/util/Random",
            "java/util/SplittableRandom", "java/lang/Thread", "java/util/Timer", "io/netty/util/HashedWheelTimer");

    private static final Set<String> RESOURCE_METHODS =
            Set.of("getResource", "getResourceAsStream", "getSystemResource", "getSystemResourceAsStream");

    static ClassScan of(byte[] classFile) {
        ClassModel model = ClassFile.of().parse(classFile);
        String name = model.thisClass().asInternalName().replace('/', '.');
        Set<String> refs = new TreeSet<>();
        for (PoolEntry e : model.constantPool()) {
            if (e instanceof ClassEntry c) {
                refs.add(c.asInternalName());
            }
        }
        List<String> downcalls = new ArrayList<>();
        List<String> upcalls = new ArrayList<>();
        Set<String> resources = new TreeSet<>();
        List<String> hazards = new ArrayList<>();
        for (MethodModel m : model.methods()) {
            String where = name + "." + m.methodName().stringValue();
            boolean clinit = m.methodName().equalsString("<clinit>");
            m.code().ifPresent(code -> {
                String lastString = null;
                for (CodeElement el : code) {
                    if (el instanceof ConstantInstruction ci && ci.constantValue() instanceof String s) {
                        lastString = s;
                    } else if (clinit && el instanceof NewObjectInstruction n
                            && (HAZARDOUS_NEW.contains(n.className().asInternalName())
                                    || n.className().asInternalName().endsWith("EventLoopGroup"))) {
                        hazards.add("new " + n.className().asInternalName().replace('/', '.'));
                    } else if (el instanceof InvokeInstruction ii) {
                        String owner = ii.owner().asInternalName();
                        String method = ii.name().stringValue();
                        if (clinit && (owner.equals("java/security/SecureRandom") && method.startsWith("getInstance")
                                || owner.equals("java/util/concurrent/Executors"))) {
                            hazards.add(owner.replace('/', '.') + "." + method);
                        }
                        if (owner.equals("java/lang/foreign/Linker") && method.equals("downcallHandle")) {
                            downcalls.add(where);
                        } else if (owner.equals("java/lang/foreign/Linker") && method.equals("upcallStub")) {
                            upcalls.add(where);
                        } else if ((owner.equals("java/lang/Class") || owner.equals("java/lang/ClassLoader"))
                                && RESOURCE_METHODS.contains(method) && lastString != null) {
                            resources.add(resourcePath(owner, name, lastString));
                        }
                    }
                }
            });
        }
        return new ClassScan(name, refs, downcalls, upcalls, resources, hazards);
    }

    /** Class.getResource resolves a relative name against the class's package; ClassLoader never does. */
    private static String resourcePath(String owner, String className, String name) {
        if (owner.equals("java/lang/Class")) {
            if (name.startsWith("/")) {
                return name.substring(1);
            }
            int dot = className.lastIndexOf('.');
            return dot < 0 ? name : className.substring(0, dot).replace('.', '/') + "/" + name;
        }
        return name;
    }

    boolean createsDowncalls() {
        return !downcallSites.isEmpty();
    }

    boolean referencesPackage(String internalPrefix) {
        return references.stream().anyMatch(r -> r.startsWith(internalPrefix));
    }
}
