package dev.ambient.xds.waypoint;

import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.EnvVarBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscalerBuilder;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudgetBuilder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The objects a waypoint Gateway stands for, as the controller wants them to be: a
 * ServiceAccount, a Deployment, a Service, a HorizontalPodAutoscaler and, when at least two
 * replicas always run, a PodDisruptionBudget. All named after the Gateway, all owned by it.
 * Pure functions of the Gateway and the configuration.
 */
public final class WaypointObjects {

    public static final String GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
    public static final String GATEWAY_CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name";
    /** Istio's label (and value) on what its waypoint controller creates. */
    public static final String MANAGED_LABEL = "gateway.istio.io/managed";
    public static final String MANAGED_VALUE = "istio.io-mesh-controller";
    /** On the pods only: a waypoint speaks HBONE itself; ztunnel must not capture it again (as Istio). */
    public static final String DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode";

    public static final int HBONE_PORT = 15008;
    public static final int METRICS_PORT = 15020;
    public static final int HEALTH_PORT = 15021;
    public static final int TARGET_CPU_UTILIZATION = 80;
    /**
     * The pods' JVM options, the same in every manifest of k8s/ and in the images' AOT training:
     * heap at most 40% of the 256Mi limit (~100 MB; the JVM's classes, code and libraries take
     * ~130 MB more), Serial GC (what the JVM picks in a container this small anyway), compact object
     * headers and the C heap trimmed every 2 s (native-images/README.md, "JVM options").
     */
    static final String JAVA_OPTS = "-XX:+UseSerialGC -XX:MaxRAMPercentage=40 -XX:+UseCompactObjectHeaders -XX:TrimNativeHeapInterval=2000 --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -XX:AOTCache=/deployments/app.aot";

    /** The desired objects of one Gateway; {@code podDisruptionBudget} is null when none is wanted. */
    public record Desired(ServiceAccount serviceAccount, Deployment deployment, Service service,
            HorizontalPodAutoscaler autoscaler, PodDisruptionBudget podDisruptionBudget) {

        public List<HasMetadata> all() {
            List<HasMetadata> all = new ArrayList<>(List.of(serviceAccount, deployment, service, autoscaler));
            if (podDisruptionBudget != null) {
                all.add(podDisruptionBudget);
            }
            return all;
        }
    }

    private WaypointObjects() {
    }

    /** The labels every managed object carries (and by which the controller finds them). */
    public static Map<String, String> managedLabels(String gatewayName) {
        return Map.of(GATEWAY_NAME_LABEL, gatewayName, MANAGED_LABEL, MANAGED_VALUE);
    }

    public static Desired desired(GenericKubernetesResource gateway, WaypointGateway.Valid bounds, WaypointConfig config) {
        String name = gateway.getMetadata().getName();
        String namespace = gateway.getMetadata().getNamespace();
        Map<String, String> labels = new LinkedHashMap<>();
        labels.put(GATEWAY_NAME_LABEL, name);
        labels.put(GATEWAY_CLASS_LABEL, config.gatewayClass());
        labels.put(MANAGED_LABEL, MANAGED_VALUE);
        Map<String, String> selector = Map.of(GATEWAY_NAME_LABEL, name);

        ServiceAccount sa = new ServiceAccountBuilder()
                .withMetadata(meta(gateway, labels))
                .build();

        Map<String, String> podLabels = new LinkedHashMap<>(labels);
        podLabels.put(DATAPLANE_MODE_LABEL, "none");
        podLabels.put("service.istio.io/canonical-name", name);
        podLabels.put("service.istio.io/canonical-revision", "latest");
        Map<String, String> podAnnotations = new LinkedHashMap<>();
        podAnnotations.put("prometheus.io/scrape", "true");
        podAnnotations.put("prometheus.io/port", String.valueOf(METRICS_PORT));
        podAnnotations.put("prometheus.io/path", "/metrics");

        // No spec.replicas: the HorizontalPodAutoscaler owns the replica count.
        Deployment deployment = new DeploymentBuilder()
                .withMetadata(meta(gateway, labels))
                .withNewSpec()
                    .withNewSelector().withMatchLabels(selector).endSelector()
                    .withNewTemplate()
                        .withNewMetadata().withLabels(podLabels).withAnnotations(podAnnotations).endMetadata()
                        .withNewSpec()
                            .withServiceAccountName(name)
                            .withTerminationGracePeriodSeconds(30L)
                            .addNewContainer()
                                .withName("waypoint")
                                .withImage(config.image())
                                .withImagePullPolicy(config.imagePullPolicy())
                                .withEnv(env(namespace, name))
                                .addNewPort().withName("hbone").withContainerPort(HBONE_PORT).withProtocol("TCP").endPort()
                                .addNewPort().withName("metrics").withContainerPort(METRICS_PORT).withProtocol("TCP").endPort()
                                .addNewPort().withName("health").withContainerPort(HEALTH_PORT).withProtocol("TCP").endPort()
                                .withNewReadinessProbe()
                                    .withNewHttpGet().withPath("/healthz/ready").withPort(new IntOrString(HEALTH_PORT))
                                        .withScheme("HTTP").endHttpGet()
                                    .withPeriodSeconds(5).withFailureThreshold(3)
                                .endReadinessProbe()
                                .withNewLivenessProbe()
                                    .withNewHttpGet().withPath("/healthz/live").withPort(new IntOrString(HEALTH_PORT))
                                        .withScheme("HTTP").endHttpGet()
                                    .withPeriodSeconds(10).withFailureThreshold(3)
                                .endLivenessProbe()
                                .withNewResources()
                                    // The CPU request is what the HorizontalPodAutoscaler's utilization is measured against.
                                    .addToRequests("cpu", new Quantity("100m"))
                                    .addToRequests("memory", new Quantity("192Mi"))
                                    .addToLimits("memory", new Quantity("256Mi"))
                                .endResources()
                                .withNewSecurityContext()
                                    .withPrivileged(false)
                                    .withAllowPrivilegeEscalation(false)
                                    .withReadOnlyRootFilesystem(true)
                                    .withRunAsNonRoot(true)
                                    .withNewCapabilities().addToDrop("ALL").endCapabilities()
                                .endSecurityContext()
                                .addNewVolumeMount().withName("tmp").withMountPath("/tmp").endVolumeMount()
                                .addNewVolumeMount().withName("ca-token").withMountPath("/var/run/secrets/tokens")
                                    .withReadOnly(true).endVolumeMount()
                                .addNewVolumeMount().withName("istio-ca-root-cert").withMountPath("/var/run/secrets/istio")
                                    .withReadOnly(true).endVolumeMount()
                            .endContainer()
                            .addNewVolume().withName("tmp").withNewEmptyDir().endEmptyDir().endVolume()
                            // The waypoint's own service-account token (audience istio-ca), rotated by the
                            // kubelet, sent to svc-ca and svc-xds with every call (waypoint.identity.token-file);
                            // svc-xds serves it only as this Gateway's account.
                            .addNewVolume().withName("ca-token").withNewProjected().addNewSource()
                                .withNewServiceAccountToken().withPath("ambient-ca-token").withAudience("istio-ca")
                                .withExpirationSeconds(3600L)
                                .endServiceAccountToken().endSource().endProjected().endVolume()
                            // The mesh root svc-ca publishes in the namespace: how svc-ca and svc-xds are verified.
                            .addNewVolume().withName("istio-ca-root-cert").withNewConfigMap()
                                .withName("istio-ca-root-cert").endConfigMap().endVolume()
                        .endSpec()
                    .endTemplate()
                .endSpec()
                .build();

        Service service = new ServiceBuilder()
                .withMetadata(meta(gateway, labels))
                .withNewSpec()
                    .withType("ClusterIP")
                    .withSelector(selector)
                    .addNewPort().withName("mesh").withPort(HBONE_PORT).withTargetPort(new IntOrString(HBONE_PORT))
                        .withProtocol("TCP").endPort()
                .endSpec()
                .build();

        HorizontalPodAutoscaler hpa = new HorizontalPodAutoscalerBuilder()
                .withMetadata(meta(gateway, labels))
                .withNewSpec()
                    .withNewScaleTargetRef().withApiVersion("apps/v1").withKind("Deployment").withName(name).endScaleTargetRef()
                    .withMinReplicas(bounds.minReplicas())
                    .withMaxReplicas(bounds.maxReplicas())
                    .addNewMetric()
                        .withType("Resource")
                        .withNewResource()
                            .withName("cpu")
                            .withNewTarget().withType("Utilization").withAverageUtilization(TARGET_CPU_UTILIZATION).endTarget()
                        .endResource()
                    .endMetric()
                .endSpec()
                .build();

        // minAvailable 1 only when at least two replicas always run: with one replica it would
        // forbid every voluntary eviction and block node drains until the autoscaler scales up.
        PodDisruptionBudget pdb = bounds.minReplicas() < 2 ? null : new PodDisruptionBudgetBuilder()
                .withMetadata(meta(gateway, labels))
                .withNewSpec()
                    .withMinAvailable(new IntOrString(1))
                    .withNewSelector().withMatchLabels(selector).endSelector()
                .endSpec()
                .build();

        return new Desired(sa, deployment, service, hpa, pdb);
    }

    private static List<EnvVar> env(String namespace, String name) {
        return List.of(
                new EnvVarBuilder().withName("WAYPOINT_GATEWAY").withValue(namespace + "/" + name).build(),
                new EnvVarBuilder().withName("POD_NAME").withNewValueFrom().withNewFieldRef()
                        .withFieldPath("metadata.name").endFieldRef().endValueFrom().build(),
                new EnvVarBuilder().withName("POD_NAMESPACE").withNewValueFrom().withNewFieldRef()
                        .withFieldPath("metadata.namespace").endFieldRef().endValueFrom().build(),
                new EnvVarBuilder().withName("SERVICE_ACCOUNT").withNewValueFrom().withNewFieldRef()
                        .withFieldPath("spec.serviceAccountName").endFieldRef().endValueFrom().build(),
                // Configuration from svc-xds, certificate from svc-ca (svc-waypoint README, waypoint.* keys).
                new EnvVarBuilder().withName("WAYPOINT_XDS_ADDRESS").withValue("xds.istio-system.svc:15010").build(),
                new EnvVarBuilder().withName("WAYPOINT_IDENTITY_SOURCE").withValue("ca").build(),
                new EnvVarBuilder().withName("WAYPOINT_IDENTITY_CA_ADDRESS").withValue("ca.istio-system.svc:15012").build(),
                // Read by the image's java launcher: every JVM in k8s/ has these options, the ones the
                // image's AOT cache was trained with (native-images/README.md; K8sJvmOptionsTest).
                new EnvVarBuilder().withName("JAVA_OPTS").withValue(JAVA_OPTS).build(),
                // Two glibc malloc arenas instead of 8 per core: ~10-20 MB less RSS, same CPU per
                // request (svc-waypoint README, integration-tests/bench/waypoint-profile.txt).
                new EnvVarBuilder().withName("MALLOC_ARENA_MAX").withValue("2")
                        .build());
    }

    private static ObjectMeta meta(GenericKubernetesResource gateway, Map<String, String> labels) {
        return new ObjectMetaBuilder()
                .withName(gateway.getMetadata().getName())
                .withNamespace(gateway.getMetadata().getNamespace())
                .withLabels(new LinkedHashMap<>(labels))
                .withOwnerReferences(ownerReference(gateway))
                .build();
    }

    /** Garbage collection by the API server: deleting the Gateway deletes what it owns. */
    public static OwnerReference ownerReference(GenericKubernetesResource gateway) {
        return new OwnerReferenceBuilder()
                .withApiVersion(WaypointGateway.API_VERSION)
                .withKind(WaypointGateway.KIND)
                .withName(gateway.getMetadata().getName())
                .withUid(gateway.getMetadata().getUid())
                .withController(true)
                .withBlockOwnerDeletion(true)
                .build();
    }
}
