"""Validates rendered Kubernetes manifests offline; run by .ci/k8s.sh inside its virtualenv.

usage: k8s-validate.py KUBERNETES_VERSION NAME=RENDERED.yaml ...

Every document of every file is checked against the JSON schemas of that Kubernetes version bundled with the
`kubernetes-validate` package, in strict mode (an unknown or misspelled field is an error). Kinds from CRDs have no
bundled schema: the ServiceMonitor (monitoring.coreos.com/v1) is checked against the subset of the Prometheus
Operator's schema that k8s/ uses, and any other unknown kind fails. Then the references between the documents of one
overlay are checked (what a schema cannot see): selectors, named ports, ConfigMap and Secret names, the HPA's target,
the Pod Security Standards' restricted profile, and the shutdown timings. Exit status 1 on any problem.
"""

import collections
import re
import sys

import jsonschema
import kubernetes_validate
import yaml

DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}
STRINGS = {"type": "array", "items": {"type": "string"}}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": STRINGS,
                },
            },
        },
    },
}
RELABELINGS = {"type": "array", "items": {"type": "object"}}

# monitoring.coreos.com/v1 ServiceMonitor: the fields k8s/ uses and their neighbours, with the types and patterns of
# the Prometheus Operator's CRD (servicemonitors.monitoring.coreos.com); anything else is refused, as in strict mode.
SERVICE_MONITOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
                "namespace": {"type": "string"},
                "labels": STRING_MAP,
                "annotations": STRING_MAP,
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": STRINGS},
                },
                "jobLabel": {"type": "string"},
                "targetLabels": STRINGS,
                "podTargetLabels": STRINGS,
                "sampleLimit": {"type": "integer", "minimum": 0},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["string", "integer"]},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "params": {"type": "object", "additionalProperties": STRINGS},
                            "interval": DURATION,
                            "scrapeTimeout": DURATION,
                            "honorLabels": {"type": "boolean"},
                            "honorTimestamps": {"type": "boolean"},
                            "enableHttp2": {"type": "boolean"},
                            "followRedirects": {"type": "boolean"},
                            "relabelings": RELABELINGS,
                            "metricRelabelings": RELABELINGS,
                        },
                    },
                },
            },
        },
    },
}
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR}


def name_of(doc):
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def where(error):
    return ".".join(str(p) for p in error.absolute_path) or "(top)"


def check_schema(doc, version):
    """Returns (how it was checked, list of problems)."""
    crd = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
    if crd is not None:
        errors = sorted(jsonschema.Draft202012Validator(crd).iter_errors(doc), key=lambda e: list(e.absolute_path))
        return "crd", [f"{where(e)}: {e.message}" for e in errors]
    try:
        kubernetes_validate.validate(doc, version, strict=True)
        return "schema", []
    except kubernetes_validate.ValidationError as e:
        return "schema", [f"{where(e)}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return "schema", [f"{e.message}: no schema to check it against (add one to CRD_SCHEMAS in .ci/k8s-validate.py)"]


def matches(selector, labels):
    want = (selector or {}).get("matchLabels") or {}
    return bool(want) and all(labels.get(k) == v for k, v in want.items())


def pod_templates(docs):
    return [(d, d["spec"]["template"]) for d in docs if d.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")]


def check_references(docs):
    """What a schema cannot see: the documents of one overlay must agree with each other."""
    problems = []
    by_kind = collections.defaultdict(dict)
    for d in docs:
        by_kind[d["kind"]][d["metadata"]["name"]] = d
    workloads = pod_templates(docs)
    configmaps = by_kind["ConfigMap"]

    for workload, template in workloads:
        wname = name_of(workload)
        labels = template["metadata"].get("labels") or {}
        if not matches(workload["spec"].get("selector"), labels):
            problems.append(f"{wname}: spec.selector does not select its own pod template")
        pod = template["spec"]
        sa = pod.get("serviceAccountName")
        if sa and sa not in by_kind["ServiceAccount"]:
            problems.append(f"{wname}: ServiceAccount {sa} is not in the overlay")
        # The Pod Security Standards' restricted profile, which the overlays' namespaces enforce.
        psc = pod.get("securityContext") or {}
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{wname}: the pod's seccompProfile is not RuntimeDefault")
        for c in pod.get("initContainers", []) + pod["containers"]:
            cname = f"{wname} container {c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cname}: allowPrivilegeEscalation is not false")
            if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
                problems.append(f"{cname}: capabilities do not drop ALL")
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                problems.append(f"{cname}: runAsNonRoot is not set")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cname}: readOnlyRootFilesystem is not true")
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    problems.append(f"{cname}: {probe} names the port {port}, which the container does not have")
            for source in c.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                if not ref.get("optional") and ref["name"] not in by_kind[kind]:
                    problems.append(f"{cname}: envFrom names the {kind} {ref['name']}, which is not in the overlay")
            for env in c.get("env", []):
                for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    ref = (env.get("valueFrom") or {}).get(key)
                    if not ref or ref.get("optional"):
                        continue
                    obj = by_kind[kind].get(ref["name"])
                    present = obj and ref["key"] in {**(obj.get("data") or {}), **(obj.get("stringData") or {})}
                    if not present:
                        problems.append(f"{cname}: {env['name']} needs the key {ref['key']} of the {kind} "
                                        f"{ref['name']}, which the overlay does not have")
            # The gateway's own drain and deadline must end before the kubelet's SIGKILL.
            settings = {}
            for source in c.get("envFrom", []):
                name = (source.get("configMapRef") or {}).get("name")
                settings.update((configmaps.get(name) or {}).get("data") or {})
            settings.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
            drain = int(settings.get("KYC_GATEWAY_SHUTDOWN_DRAIN_SECS", 5))
            deadline = int(settings.get("KYC_GATEWAY_SHUTDOWN_DEADLINE_SECS", 25))
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if grace <= drain + deadline:
                problems.append(f"{wname}: terminationGracePeriodSeconds {grace} is not above the drain "
                                f"({drain} s) plus the deadline ({deadline} s)")
        for vol in pod.get("volumes", []):
            name = (vol.get("configMap") or {}).get("name")
            if name and name not in configmaps:
                problems.append(f"{wname}: volume {vol['name']} names the ConfigMap {name}, not in the overlay")

    def selected_workloads(selector):
        return [t for _, t in workloads if matches(selector, t["metadata"].get("labels") or {})]

    for svc in by_kind["Service"].values():
        targets = selected_workloads({"matchLabels": svc["spec"].get("selector") or {}})
        if not targets:
            problems.append(f"{name_of(svc)}: its selector matches no pod template")
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort")
            if isinstance(target, str) and not any(
                target in {p.get("name") for c in t["spec"]["containers"] for p in c.get("ports", [])}
                for t in targets
            ):
                problems.append(f"{name_of(svc)}: targetPort {target} is not a named port of the pods it selects")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for obj in by_kind[kind].values():
            selector = obj["spec"].get("selector" if kind == "PodDisruptionBudget" else "podSelector")
            if not selected_workloads(selector):
                problems.append(f"{name_of(obj)}: its selector matches no pod template")
    for hpa in by_kind["HorizontalPodAutoscaler"].values():
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["name"] not in by_kind[ref["kind"]]:
            problems.append(f"{name_of(hpa)}: scaleTargetRef {ref['kind']}/{ref['name']} is not in the overlay")
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            problems.append(f"{name_of(hpa)}: minReplicas is above maxReplicas")
        target = by_kind[ref["kind"]].get(ref["name"])
        if target is not None and "replicas" in target["spec"]:
            problems.append(f"{name_of(hpa)}: {name_of(target)} sets spec.replicas, which every apply would reset")
    for sm in by_kind["ServiceMonitor"].values():
        services = [s for s in by_kind["Service"].values()
                    if matches(sm["spec"]["selector"], s["metadata"].get("labels") or {})]
        if not services:
            problems.append(f"{name_of(sm)}: its selector matches no Service")
        for endpoint in sm["spec"]["endpoints"]:
            port = endpoint.get("port")
            if port and not any(port in {p.get("name") for p in s["spec"]["ports"]} for s in services):
                problems.append(f"{name_of(sm)}: endpoint port {port} is not a port of the Services it selects")
    return problems


def self_check(version):
    """The validator must refuse a misspelled field, or a green run would prove nothing."""
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "canary"},
           "spec": {"ports": [{"port": 80, "targetPrt": 8080}]}}
    bad_monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "canary"},
                   "spec": {"selector": {}, "endpoints": [{"port": "metrics", "intervall": "30s"}]}}
    unknown = {"apiVersion": "example.com/v1", "kind": "Canary", "metadata": {"name": "canary"}}
    for doc in (bad, bad_monitor, unknown):
        if not check_schema(doc, version)[1]:
            sys.exit(f"k8s-validate: the validator accepted a broken {doc['kind']}: it cannot be trusted")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    version, failed, total = sys.argv[1], False, collections.Counter()
    self_check(version)
    for arg in sys.argv[2:]:
        overlay, path = arg.split("=", 1)
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        kinds, problems, notes = collections.Counter(), [], []
        for doc in docs:
            how, errors = check_schema(doc, version)
            kinds[doc.get("kind")] += 1
            total[how] += 1
            if how == "crd":
                notes.append(f"  note: {name_of(doc)} is of a CRD kind, without a bundled schema: checked against "
                             f"the subset of {doc['apiVersion']} in .ci/k8s-validate.py")
            problems += [f"{name_of(doc)}: {e}" for e in errors]
        if not problems:
            problems = check_references(docs)
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        if problems:
            failed = True
            print(f"{overlay}: INVALID ({len(docs)} documents: {summary})")
            for p in problems:
                print(f"  {overlay}: {p}")
        else:
            print(f"{overlay}: {len(docs)} documents valid ({summary})")
        for note in notes:
            print(note)
    print(f"k8s: {total['schema']} documents validated against the Kubernetes {version} schemas (strict), "
          f"{total['crd']} document(s) of CRD kinds checked structurally" + ("; FAILED" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
