#!/usr/bin/python3
"""The mesh in a box's scheduler and kubelet, deciding: which pods the box runs, from the Kubernetes
YAML of its watched directory.

usage: podplan.py SAMPLES_DIR STATE_DIR MESHBOX_DIR NODE...   (NODE as name=10.44.1)

Every Pod (and every replica of a Deployment) becomes one line `pod` with its processes (`run`) and
readiness (`ready`) when the box can run it on this host, else one `skip` line with the reason:
  pod   NAME NAMESPACE NODE|- IP UID ROLE SERVICEACCOUNT GATEWAY|- IP6|-   (ROLE: app, waypoint, outside;
        IP6: the IPv6 address of status.podIPs, in fd00:44::/32, for a dual-stack pod)
  run   NAME PROCESS COMMAND       (COMMAND shell-quoted, run inside the pod's network namespace)
  ready NAME URL                   (asked from inside the pod until it answers)
  skip  NAMESPACE/NAME REASON
  resolver IP                      (the outside pod annotated meshbox.ambient.dev/resolver)
A pod's lines are its whole spec: the box re-creates a pod whose lines change.
Side effects, as the API server would write them: a Deployment's replicas are written as Pods (nodes
spread round-robin, IPs from the node's range) into meshbox-replicas.yaml in the watched directory;
each namespace's /etc/hosts lines for the Services are written to STATE_DIR/hosts/NAMESPACE; the
waypoints' scrape targets to STATE_DIR/prometheus/waypoints.json.
"""
import ipaddress
import json
import os
import re
import shlex
import shutil
import sys
import uuid

import yaml

ANNOTATION = "meshbox.ambient.dev/"
COMMAND = ANNOTATION + "command"     # the host command for the pod's first container
OUTSIDE = ANNOTATION + "outside"     # "true": a host beyond the nodes (no node, never enrolled)
RESOLVER = ANNOTATION + "resolver"   # "true" on an outside pod: it runs the box's upstream DNS resolver
GATEWAY_NAME = "gateway.networking.k8s.io/gateway-name"
REPLICAS_FILE = "meshbox-replicas.yaml"
BOX_NETWORK = ipaddress.IPv4Network("10.44.0.0/16")
BOX_NETWORK6 = ipaddress.IPv6Network("fd00:44::/32")   # a dual-stack pod's IPv6 address (ULA)


def documents(directory):
    """(file, document) for every readable YAML document; a broken file is xds's to report."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or not f.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(root, f)
            try:
                with open(path) as stream:
                    docs = list(yaml.safe_load_all(stream))
            except (OSError, yaml.YAMLError):
                continue
            for d in docs:
                if isinstance(d, dict):
                    for item in (d.get("items") or []) if d.get("kind") == "List" else [d]:
                        if isinstance(item, dict):
                            yield os.path.relpath(path, directory), item


def mapping(value):
    return value if isinstance(value, dict) else {}


def meta(o):
    m = mapping(o.get("metadata"))
    return (str(m.get("name") or ""), str(m.get("namespace") or "default"), mapping(m.get("labels")),
            mapping(m.get("annotations")))


def printable(text):
    """For one log line: YAML may hold tabs, newlines and escapes."""
    return re.sub(r"[^\x20-\x7e]", "?", str(text))[:300]


def label(value, limit=63):
    """A DNS label (RFC 1123) of at most limit characters: safe in paths, process and interface names."""
    return isinstance(value, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) is not None \
        and len(value) <= limit


def box_address(value):
    """An IPv4 address of the box's network 10.44.0.0/16 a pod may have, else None."""
    try:
        ip = ipaddress.IPv4Address(str(value))
    except ValueError:
        return None
    return str(ip) if ip in BOX_NETWORK and ip not in (BOX_NETWORK.network_address, BOX_NETWORK.broadcast_address) \
        else None


def box_address6(value):
    """An IPv6 address of the box's network fd00:44::/32 a pod may have (compressed), else None."""
    try:
        ip = ipaddress.IPv6Address(str(value))
    except ValueError:
        return None
    return str(ip) if ip in BOX_NETWORK6 and ip != BOX_NETWORK6.network_address else None


def pod_ip6(status, ip):
    """The IPv6 address of status.podIPs ('-' for none), or an error: podIPs, when given, are the
    podIP first and at most one IPv6 address of the box's network."""
    listed = [str(mapping(e).get("ip") or "") for e in status.get("podIPs") or []]
    if not listed:
        return "-"
    if listed[0] != ip or len(listed) > 2:
        return None
    if len(listed) == 1:
        return "-"
    return box_address6(listed[1]) if box_address6(listed[1]) == listed[1] else None


def replicas(deployments, nodes, previous, taken):
    """The Pods a Deployment controller and the scheduler would make: NAME-0..N-1, spread over the
    nodes, each keeping the IP it had in the last plan."""
    pods = []
    for d in deployments:
        try:
            pods += replicas_of(d, nodes, previous, taken)
        except (AttributeError, TypeError, ValueError) as e:   # a field of the wrong shape
            name, ns, _, _ = meta(d)
            print(f"skip\t{printable(ns)}/{printable(name)}\tDeployment malformed: {printable(e)}", flush=True)
    return pods


def replicas_of(d, nodes, previous, taken):
    """One Deployment's replicas."""
    pods = []
    name, ns, _, _ = meta(d)
    spec = mapping(d.get("spec"))
    template = mapping(spec.get("template"))
    tmeta = mapping(template.get("metadata"))
    count = spec.get("replicas", 1)
    if not isinstance(count, int) or count < 0 or count > 20:
        print(f"skip\t{printable(ns)}/{printable(name)}\tDeployment: replicas must be 0..20 in the box",
              flush=True)
        return pods
    for i in range(count):
        pod_spec = dict(mapping(template.get("spec")))
        node = pod_spec.get("nodeName") or sorted(nodes)[i % len(nodes)]
        pod_spec["nodeName"] = node
        pod_name = f"{name}-{i}"
        ip = previous.get((ns, pod_name, node))
        if ip is None or ip in taken:
            prefix = nodes.get(node)
            free = [f"{prefix}.{h}" for h in range(200, 250) if prefix and f"{prefix}.{h}" not in taken]
            ip = free[0] if free else None
        if ip is None:
            print(f"skip\t{printable(ns)}/{printable(pod_name)}\tno free address on {printable(node)} for this"
                  " replica", flush=True)
            continue
        taken.add(ip)
        pods.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": ns,
                         "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"meshbox/{ns}/{pod_name}")),
                         "labels": dict(mapping(tmeta.get("labels"))),
                         "annotations": dict(mapping(tmeta.get("annotations")))},
            "spec": pod_spec,
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]},
        })
    return pods


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def expand(value, env):
    """Kubernetes' $(VAR) in command and args: a defined variable's value, $$(VAR) stays literal."""
    return re.sub(r"\$?\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: m.group(0)[1:] if m.group(0).startswith("$$") else env.get(m.group(1), m.group(0)),
                  str(value))


def host_command(argv, meshbox_dir):
    """The command with its program found on this host (pods/X relative to meshbox/), or None."""
    if not argv:
        return None
    program = argv[0]
    if "/" in program:
        path = program if os.path.isabs(program) else os.path.join(meshbox_dir, program)
        return [path] + argv[1:] if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return argv if shutil.which(program) else None


def plan_pod(pod, ctx):
    name, ns, labels, annotations = meta(pod)
    spec = mapping(pod.get("spec"))
    status = mapping(pod.get("status"))
    ip = str(status.get("podIP") or "")
    outside = str(annotations.get(OUTSIDE, "")).lower() == "true"
    node = spec.get("nodeName") or ""
    where = f"{ns}/{name}"
    if not label(name, 42):
        return "its name must be a DNS label of at most 42 characters (the network namespace is mbox-NAME)"
    if not label(ns):
        return "its namespace must be a DNS label"
    uid = str(mapping(pod.get("metadata")).get("uid") or uuid.uuid5(uuid.NAMESPACE_URL, f"meshbox/{where}"))
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", uid):
        return "metadata.uid must be letters, digits and '-' (it goes into CNI_ARGS)"
    if name in ctx["names"]:
        return f"the name {name} is taken by {ctx['names'][name]}: pod names are unique in the box"
    if box_address(ip) != ip or ip in ctx["reserved"]:
        return f"status.podIP '{ip}' is not a free address of the box's network 10.44.0.0/16" + (
            " (a Deployment gets addresses assigned)" if not ip else "")
    if ip in ctx["ips"]:
        return f"status.podIP {ip} is taken by {ctx['ips'][ip]}"
    ip6 = pod_ip6(status, ip)
    if ip6 is None or ip6 in ctx["reserved"]:
        return (f"status.podIPs must be [{ip}] and at most one IPv6 address of the box's network"
                f" {BOX_NETWORK6} (written compressed, e.g. fd00:44:1::10)")
    if ip6 in ctx["ips"]:
        return f"status.podIPs' {ip6} is taken by {ctx['ips'][ip6]}"
    if not outside and node not in ctx["nodes"]:
        return (f"spec.nodeName '{node}' is not one of the box's nodes ({', '.join(sorted(ctx['nodes']))});"
                f" or annotate {OUTSIDE}: \"true\" for a host beyond the nodes")
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    gateway = labels.get(GATEWAY_NAME)
    role = "outside" if outside else "app"
    runs = []
    ready = []
    if gateway and (ns, gateway) in ctx["waypoints"] and not outside:
        role = "waypoint"
        runs.append((f"pod-{name}", "waypoint"))
        ready.append(f"http://{ip}:15021/healthz/ready")
    else:
        gateway = None
        if not containers:
            return "no containers"
        env_base = {"POD_NAME": name, "POD_NAMESPACE": ns, "POD_IP": ip, "NODE_NAME": node or "-",
                    "MESHBOX_DIR": ctx["state"], "MESHBOX_PODS": os.path.join(ctx["meshbox"], "pods")}
        for i, c in enumerate(containers):
            if not label(c.get("name")):
                return f"container {c.get('name')!r}: a container's name must be a DNS label"
            env = dict(env_base)
            for e in c.get("env") or []:
                if isinstance(e, dict) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(e.get("name"))) and "value" in e:
                    env[str(e["name"])] = expand(e["value"], env)
            if i == 0 and annotations.get(COMMAND):
                argv = shlex.split(str(annotations[COMMAND]))
            else:
                argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            argv = host_command([expand(a, env) for a in argv], ctx["meshbox"])
            if argv is None:
                shown = " ".join(map(str, (c.get("command") or []) + (c.get("args") or []))) or "(none)"
                return (f"cannot run container {c.get('name')} (image {c.get('image')}, command {shown}) on this"
                        f" host: give it a command the host has, or the annotation {COMMAND}")
            process = f"pod-{name}" if len(containers) == 1 else f"pod-{name}-{c.get('name')}"
            runs.append((process, shlex.join(["env"] + [f"{k}={v}" for k, v in sorted(env.items())] + argv)))
            probe = mapping(c.get("readinessProbe")).get("httpGet")
            if isinstance(probe, dict) and isinstance(probe.get("port"), int):
                ready.append(f"http://127.0.0.1:{probe['port']}{probe.get('path') or '/'}")
    sa = str(spec.get("serviceAccountName") or "default")
    if not label(sa, 253):
        return "spec.serviceAccountName must be a DNS label"
    ctx["names"][name] = where
    ctx["ips"][ip] = where
    if ip6 != "-":
        ctx["ips"][ip6] = where
    if role == "waypoint":
        ctx["waypoint_pods"][ip] = (name, node)
    lines = [f"pod\t{name}\t{ns}\t{node if not outside else '-'}\t{ip}\t{uid}\t{role}\t{sa}\t"
             f"{ns + '/' + gateway if gateway else '-'}\t{ip6}"]
    lines += [f"run\t{name}\t{p}\t{cmd}" for p, cmd in runs]
    lines += [f"ready\t{name}\t{url}" for url in ready]
    if outside and str(annotations.get(RESOLVER, "")).lower() == "true":
        lines.append(f"resolver\t{ip}")
    return lines


def main():
    samples, state, meshbox_dir = sys.argv[1:4]
    nodes = dict(n.split("=", 1) for n in sys.argv[4:])
    objects = [(f, d) for f, d in documents(samples) if f != REPLICAS_FILE]
    kinds = lambda kind: [d for _, d in objects if d.get("kind") == kind]
    pods = [p for p in kinds("Pod") if p.get("apiVersion") == "v1"]
    deployments = [d for d in kinds("Deployment") if d.get("apiVersion") == "apps/v1"]
    waypoints = {(meta(g)[1], meta(g)[0]) for g in kinds("Gateway")
                 if (g.get("spec") or {}).get("gatewayClassName") == "istio-waypoint"}

    previous = {}
    replicas_path = os.path.join(samples, REPLICAS_FILE)
    try:
        with open(replicas_path) as f:
            for p in yaml.safe_load_all(f):
                if isinstance(p, dict):
                    name, ns, _, _ = meta(p)
                    previous[(ns, name, (p.get("spec") or {}).get("nodeName"))] = (p.get("status") or {}).get("podIP")
    except (OSError, yaml.YAMLError):
        pass
    taken = {(p.get("status") or {}).get("podIP") for p in pods}
    generated = replicas(deployments, nodes, previous, taken)
    if generated:
        write_if_changed(replicas_path, "# Written by meshbox (its Deployment controller and scheduler): the"
                         " replicas of the Deployments in this directory. Do not edit.\n"
                         + yaml.safe_dump_all(generated, sort_keys=False))
    elif os.path.exists(replicas_path):
        os.remove(replicas_path)

    ctx = {"nodes": nodes, "waypoints": waypoints, "state": state, "meshbox": meshbox_dir, "names": {}, "ips": {}, "waypoint_pods": {},
           "reserved": {"10.44.0.1", "10.44.0.20", "10.44.0.21", "10.44.0.30", "fd00:44::1"}}
    for pod in pods + generated:
        name, ns, _, _ = meta(pod)
        try:
            result = plan_pod(pod, ctx)
        except (AttributeError, TypeError, ValueError) as e:   # a field of the wrong shape
            result = f"malformed: {e}"
        if isinstance(result, str):
            print(f"skip\t{printable(ns)}/{printable(name)}\t{printable(result)}")
        else:
            print("\n".join(result))

    # /etc/hosts lines for every Service with a cluster IP, per namespace (short names for its own).
    services = []
    for s in kinds("Service"):
        name, ns, _, _ = meta(s)
        try:
            ip = str(ipaddress.ip_address(str(mapping(s.get("spec")).get("clusterIP"))))
        except ValueError:
            continue
        if label(name) and label(ns):
            services.append((ns, name, ip))
    os.makedirs(os.path.join(state, "hosts"), exist_ok=True)
    for ns in {where.split("/")[0] for where in ctx["names"].values()}:
        lines = [f"{ip} {n}.{sns}.svc.cluster.local {n}.{sns}" + (f" {n}" if sns == ns else "")
                 for sns, n, ip in sorted(services)]
        write_if_changed(os.path.join(state, "hosts", ns), "".join(l + "\n" for l in lines))

    # Prometheus finds the waypoints here (file_sd_configs re-reads it when it changes).
    targets = [{"targets": [f"{ip}:15020"], "labels": {"app": "waypoint", "node": node, "pod": name}}
               for ip, (name, node) in sorted(ctx["waypoint_pods"].items())]
    os.makedirs(os.path.join(state, "prometheus"), exist_ok=True)
    write_if_changed(os.path.join(state, "prometheus", "waypoints.json"), json.dumps(targets) + "\n")


if __name__ == "__main__":
    main()
