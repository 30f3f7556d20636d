#!/usr/bin/python3
"""Checks Kubernetes objects (a multi-document YAML stream) against the API models shipped in
Debian's python3-kubernetes: every field name, recursively, must be one the model of its kind
knows (`attribute_map`), and every value must have the model's type (`openapi_types`).

Objects whose kind this client version has no model for are checked where real models exist
for their parts (ObjectMeta, LabelSelector, RuleWithOperations), and the fields left unchecked
are listed: no schema is invented here.

Usage: check_k8s_objects.py FILE   (exit 0 valid, 1 invalid)
"""
import re
import sys

import kubernetes
import yaml
from kubernetes import client

errors = []
unchecked = []


def model_class(name):
    return getattr(client, name, None)


def check_value(value, type_name, path):
    """Checks `value` against an openapi_types entry such as 'str', 'list[V1Volume]'."""
    if value is None:
        return
    match = re.fullmatch(r"list\[(.+)\]", type_name)
    if match:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, found {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check_value(item, match.group(1), f"{path}[{i}]")
        return
    match = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if match:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, found {type(value).__name__}")
            return
        for key, item in value.items():
            if not isinstance(key, str):
                errors.append(f"{path}: key {key!r} is not a string")
            check_value(item, match.group(1), f"{path}.{key}")
        return
    scalar_types = {"str": str, "bool": bool, "int": int, "float": (int, float)}
    if type_name in scalar_types:
        # YAML reads `true` as a bool: a label value written that way is not a string.
        if type_name == "int" and isinstance(value, bool) or not isinstance(value, scalar_types[type_name]):
            errors.append(f"{path}: expected {type_name}, found {type(value).__name__} {value!r}")
        return
    if type_name in ("object", "datetime", "date"):
        return
    cls = model_class(type_name)
    if cls is None:
        errors.append(f"{path}: the client has no model {type_name}")
        return
    check_object(value, cls, path)


def check_object(obj, cls, path):
    if not isinstance(obj, dict):
        errors.append(f"{path}: expected an object ({cls.__name__}), found {type(obj).__name__}")
        return
    by_json_name = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    for key, value in obj.items():
        attr = by_json_name.get(key)
        if attr is None:
            errors.append(f"{path}.{key}: unknown field of {cls.__name__} "
                          f"(known: {', '.join(sorted(by_json_name))})")
            continue
        check_value(value, cls.openapi_types[attr], f"{path}.{key}")


def check_partially(doc, path):
    """For kinds this client lacks: check the parts that have real models, list the rest."""
    kind = doc.get("kind")
    known_parts = {}
    if "metadata" in doc:
        check_object(doc["metadata"], client.V1ObjectMeta, f"{path}.metadata")
        known_parts["metadata"] = True
    spec = doc.get("spec", {})
    match = spec.get("matchConstraints") or spec.get("matchResources") or {}
    match_name = "matchConstraints" if "matchConstraints" in spec else "matchResources"
    for selector in ("namespaceSelector", "objectSelector"):
        if selector in match:
            check_object(match[selector], client.V1LabelSelector,
                         f"{path}.spec.{match_name}.{selector}")
    for i, rule in enumerate(match.get("resourceRules", [])):
        # NamedRuleWithOperations = RuleWithOperations + resourceNames.
        rule = {k: v for k, v in rule.items() if k != "resourceNames"}
        check_object(rule, client.V1RuleWithOperations,
                     f"{path}.spec.{match_name}.resourceRules[{i}]")
    for key in doc:
        if key not in ("apiVersion", "kind", "metadata", "spec"):
            errors.append(f"{path}.{key}: unexpected top-level field")
    for key in spec:
        unchecked.append(f"{path}.spec.{key}" + (" (selectors and rules checked)"
                                                 if key == match_name else ""))
    print(f"{path}: python3-kubernetes {kubernetes.__version__} has no model V1{kind} "
          f"(the Kubernetes 1.30 API); checked metadata, selectors and resource rules against "
          f"V1ObjectMeta, V1LabelSelector and V1RuleWithOperations")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as stream:
        documents = [d for d in yaml.safe_load_all(stream) if d is not None]
    if not documents:
        sys.exit("no objects to check")
    for index, doc in enumerate(documents):
        path = f"document {index} ({doc.get('kind', '?')} {doc.get('metadata', {}).get('name', '?')})"
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not api_version or not kind:
            errors.append(f"{path}: missing apiVersion or kind")
            continue
        version = api_version.split("/")[-1]
        cls = model_class(version.capitalize() + kind)
        if cls is not None:
            check_object(doc, cls, path)
            print(f"{path}: checked every field against {cls.__name__}")
        elif api_version == "admissionregistration.k8s.io/v1":
            check_partially(doc, path)
        else:
            errors.append(f"{path}: no model for {api_version} {kind}")
    for path in unchecked:
        print(f"not checked (no model in this client): {path}")
    for error in errors:
        print(f"INVALID: {error}", file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
