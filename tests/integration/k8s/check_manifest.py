#!/usr/bin/python3
"""Checks Pod manifests field by field against the Kubernetes API models of Debian's
python3-kubernetes (an unknown or misspelled field, a wrong type or a missing required field
fails), against Pod Security "restricted" (the rules of tests/k8s-test-server), and against what
kbatch promises for every job Pod (pinned node, never privileged, no hostPath, no host namespaces,
restartPolicy Never, labels and annotations).

    check_manifest.py [--expect KEY=VALUE ...] < manifest.yaml   (YAML, multi-document, or JSON)

--expect takes a dotted path into the Pod (list indices as numbers) and the value it must have,
e.g. spec.containers.0.resources.limits.memory=1073741824.
"""

import argparse
import json
import os
import sys

import yaml
from kubernetes import client as k8s_client
from kubernetes.client import models

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "k8s-test-server"))
from k8s_test_server import restricted_violations  # noqa: E402

PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object,
              "datetime": str, "date": str}


def check_value(value, type_name, path, problems):
    if value is None:
        return
    if type_name.startswith("list["):
        if not isinstance(value, list):
            problems.append("%s: expected a list for %s" % (path, type_name))
            return
        for index, item in enumerate(value):
            check_value(item, type_name[5:-1], "%s[%d]" % (path, index), problems)
        return
    if type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        if not isinstance(value, dict):
            problems.append("%s: expected a mapping for %s" % (path, type_name))
            return
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append("%s: key %r is not a string" % (path, key))
            check_value(item, inner, "%s.%s" % (path, key), problems)
        return
    if type_name in PRIMITIVES:
        expected = PRIMITIVES[type_name]
        if type_name == "int" and isinstance(value, bool) or \
                type_name != "bool" and type_name != "object" and isinstance(value, bool) or \
                not isinstance(value, expected):
            problems.append("%s: expected %s, got %s %r" % (path, type_name,
                                                            type(value).__name__, value))
        return
    model = getattr(models, type_name, None)
    if model is None:
        problems.append("%s: the checker does not know the type %s" % (path, type_name))
        return
    if not isinstance(value, dict):
        problems.append("%s: expected a %s mapping" % (path, type_name))
        return
    by_json_key = {json_key: attribute for attribute, json_key in model.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json_key:
            problems.append("%s.%s: unknown field of %s" % (path, key, type_name))
            continue
        check_value(item, model.openapi_types[by_json_key[key]], "%s.%s" % (path, key), problems)


def check_required(pod, problems):
    """The models' constructors refuse a missing required field (client-side validation)."""
    api = k8s_client.ApiClient()
    try:
        api._ApiClient__deserialize(pod, "V1Pod")  # the same path the client uses for answers
    except ValueError as error:
        problems.append("required field: %s" % error)


def check_kbatch_promises(pod, problems):
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    if not spec.get("nodeName"):
        problems.append("spec.nodeName: a job Pod is pinned to the batch host's node")
    if spec.get("restartPolicy") != "Never":
        problems.append("spec.restartPolicy: must be Never")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append("spec.%s: must not be true" % flag)
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append("spec.volumes[%s]: hostPath is never used" % volume.get("name"))
    for container in spec.get("containers") or []:
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append("container %s: privileged" % container.get("name"))
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append("container %s: readOnlyRootFilesystem must be true"
                            % container.get("name"))
        if not any(m.get("mountPath") == "/tmp" for m in container.get("volumeMounts") or []):
            problems.append("container %s: /tmp must be an emptyDir mount" % container.get("name"))
    labels = meta.get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") != "kbatch":
        problems.append("metadata.labels: app.kubernetes.io/managed-by=kbatch missing")
    if "kbatch.io/job-id" not in labels or \
            "kbatch.io/job-id" not in (meta.get("annotations") or {}):
        problems.append("metadata: the kbatch.io/job-id label and annotation are required")
    name = meta.get("name", "")
    if len(name) > 63:
        problems.append("metadata.name: longer than 63 characters")


def lookup(pod, dotted):
    value = pod
    for part in dotted.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            # Label and annotation keys contain dots: try the rest as one key.
            rest = dotted[dotted.index(part):]
            if isinstance(value, dict) and rest in value:
                return value[rest]
            raise KeyError(dotted)
    return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect", action="append", default=[])
    args = parser.parse_args()
    text = sys.stdin.read()
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    if not documents:
        print("check_manifest: no manifest on stdin", file=sys.stderr)
        return 1
    failed = False
    for index, pod in enumerate(documents):
        problems = []
        if pod.get("apiVersion") != "v1" or pod.get("kind") != "Pod":
            problems.append("not a v1 Pod")
        check_value(pod, "V1Pod", "Pod", problems)
        check_required(pod, problems)
        for rule, detail in restricted_violations(pod):
            problems.append('Pod Security "restricted": %s (%s)' % (rule, detail))
        check_kbatch_promises(pod, problems)
        if index == 0:
            for expectation in args.expect:
                key, _, wanted = expectation.partition("=")
                try:
                    actual = lookup(pod, key)
                except (KeyError, IndexError, ValueError):
                    problems.append("%s: missing (expected %s)" % (key, wanted))
                    continue
                shown = actual if isinstance(actual, str) else json.dumps(actual)
                if shown != wanted:
                    problems.append("%s: is %s, expected %s" % (key, shown, wanted))
        for problem in problems:
            print("check_manifest: document %d: %s" % (index + 1, problem), file=sys.stderr)
        failed = failed or bool(problems)
    if not failed:
        print("check_manifest: %d Pod manifest(s) valid" % len(documents))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
