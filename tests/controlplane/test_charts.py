"""Helm cannot run here; check what can be checked: the charts' metadata, values and CRD
files parse, the CRDs are the agentgateway.dev ones, and every `.Values.*` a template uses
exists in values.yaml."""

import re
from pathlib import Path

import yaml

CHARTS = Path(__file__).resolve().parents[2] / "charts"


def test_chart_files_parse():
    for chart in ("agora", "agora-crds"):
        meta = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())
        assert meta["apiVersion"] == "v2" and meta["name"] == chart


def test_crds_are_valid_yaml_for_our_group():
    kinds = set()
    for f in (CHARTS / "agora-crds" / "templates").glob("*.yaml"):
        doc = yaml.safe_load(f.read_text())
        assert doc["kind"] == "CustomResourceDefinition"
        assert doc["spec"]["group"] == "agentgateway.dev"
        assert doc["metadata"]["name"] == f"{doc['spec']['names']['plural']}.agentgateway.dev"
        for v in doc["spec"]["versions"]:
            assert v["schema"]["openAPIV3Schema"]["type"] == "object"
        kinds.add(doc["spec"]["names"]["kind"])
    assert kinds == {"AgentgatewayBackend", "AgentgatewayPolicy", "AgentgatewayParameters"}


def test_templates_use_only_defined_values():
    values = yaml.safe_load((CHARTS / "agora" / "values.yaml").read_text())
    for f in (CHARTS / "agora" / "templates").iterdir():
        for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", f.read_text()):
            node = values
            for part in ref.split("."):
                assert isinstance(node, dict) and part in node, f"{f.name}: .Values.{ref} is not in values.yaml"
                node = node[part]
