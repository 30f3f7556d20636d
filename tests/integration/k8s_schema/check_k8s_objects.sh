#!/bin/bash
# check_k8s_objects.sh KBATCH POLICY: `kbatch policy export-k8s` must produce objects whose field
# names and types the Kubernetes API models (python3-kubernetes) accept, and the checker must
# reject the same objects with a field name misspelled (so that it can fail).
set -euo pipefail
kbatch=${1:?usage: check_k8s_objects.sh KBATCH POLICY}
policy=${2:?}
checker=$(dirname "$0")/check_k8s_objects.py
python=/usr/bin/python3   # Debian's, where python3-kubernetes lives
"$python" -c 'import kubernetes' 2>/dev/null ||
  { echo "check_k8s_objects: python3-kubernetes is missing (apt-get install python3-kubernetes)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$kbatch" policy export-k8s --policy "$policy" > "$work/objects.yaml"
"$python" "$checker" "$work/objects.yaml"

# Deliberate mistakes, each of which the checker must catch.
"$python" - "$work" <<'PY'
import sys, yaml
work = sys.argv[1]
docs = list(yaml.safe_load_all(open(f"{work}/objects.yaml")))
def write(name, mutate):
    copy = list(yaml.safe_load_all(yaml.safe_dump_all(docs)))
    mutate(copy)
    with open(f"{work}/{name}.yaml", "w") as f:
        yaml.safe_dump_all(copy, f)
def misspell_labels(d):
    ns = next(x for x in d if x["kind"] == "Namespace")
    ns["metadata"]["lables"] = ns["metadata"].pop("labels")
def boolean_label(d):
    ns = next(x for x in d if x["kind"] == "Namespace")
    ns["metadata"]["labels"]["kbatch.io/jobs"] = True
def misspell_rule(d):
    vap = next(x for x in d if x["kind"] == "ValidatingAdmissionPolicy")
    rule = vap["spec"]["matchConstraints"]["resourceRules"][0]
    rule["apiGroup"] = rule.pop("apiGroups")
def misspell_selector(d):
    binding = next(x for x in d if x["kind"] == "ValidatingAdmissionPolicyBinding")
    selector = binding["spec"]["matchResources"]["namespaceSelector"]
    selector["matchLabel"] = selector.pop("matchLabels")
write("misspelled-labels", misspell_labels)
write("boolean-label", boolean_label)
write("misspelled-rule", misspell_rule)
write("misspelled-selector", misspell_selector)
PY
for broken in misspelled-labels boolean-label misspelled-rule misspelled-selector; do
  if "$python" "$checker" "$work/$broken.yaml" > "$work/$broken.out" 2>&1; then
    cat "$work/$broken.out"
    echo "check_k8s_objects: the checker accepted $broken.yaml" >&2
    exit 1
  fi
  echo "rejected as expected: $broken: $(grep INVALID "$work/$broken.out" | head -1)"
done
