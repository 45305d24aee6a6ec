"""No Docker engine runs here, so the images cannot be built in CI; check what ties the
Dockerfile to the rest: each target exists, runs a binary the build stage builds from a
workspace package, exposes the port its deployer or chart uses, and carries the name the
chart and the controller's default proxy image give it."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def stages() -> dict[str, list[str]]:
    """Dockerfile instructions by stage name (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if m:
            current = m.group(1) or f"stage{len(out)}"
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def bins() -> dict[str, str]:
    """Binary name -> workspace package that builds it."""
    ws = tomllib.loads((ROOT / "Cargo.toml").read_text())
    out = {}
    for member in ws["workspace"]["members"]:
        for manifest in ROOT.glob(f"{member}/Cargo.toml"):
            pkg = tomllib.loads(manifest.read_text())
            for b in pkg.get("bin", []):
                out[b["name"]] = pkg["package"]["name"]
            if (manifest.parent / "src" / "main.rs").exists():
                out.setdefault(pkg["package"]["name"], pkg["package"]["name"])
    return out


def test_each_target_runs_a_binary_the_build_stage_builds():
    s = stages()
    build = " ".join(s["build"])
    built = set(re.findall(r"-p\s+(\S+)", build))
    assert "--locked" in build and "--release" in build
    packages = bins()
    for target, binary in (("proxy", "agora-proxy"), ("controller", "agora-controller")):
        lines = s[target]
        entry = next(line for line in lines if line.startswith("ENTRYPOINT"))
        assert f'"/usr/local/bin/{binary}"' in entry, entry
        assert any(line.startswith("COPY --from=build") and binary in line for line in lines)
        assert packages[binary] in built, f"{binary} comes from {packages[binary]}, not built"
        assert any(re.match(r"USER\s+65532", line) for line in lines), "must not run as root"


def test_ports_and_names_match_chart_and_deployer():
    s = stages()
    values = yaml.safe_load((ROOT / "charts" / "agora" / "values.yaml").read_text())
    chart = yaml.safe_load((ROOT / "charts" / "agora" / "Chart.yaml").read_text())
    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    assert chart["appVersion"] == version

    controller_expose = [line for line in s["controller"] if line.startswith("EXPOSE")]
    assert controller_expose == [f"EXPOSE {values['xds']['port']}"]
    deploy = (ROOT / "control" / "src" / "deploy.rs").read_text()
    admin = re.search(r'"--admin", "0\.0\.0\.0:(\d+)"', deploy).group(1)
    assert [line for line in s["proxy"] if line.startswith("EXPOSE")] == [f"EXPOSE {admin}"]

    header = (ROOT / "Dockerfile").read_text()
    main = (ROOT / "control" / "src" / "main.rs").read_text()
    default_proxy = re.search(r'default_value = "(ghcr\.io/[^"]+)"', main).group(1)
    assert default_proxy == f"ghcr.io/{values['proxyImage']['repository']}:{version}"
    for target, image in (
        ("proxy", default_proxy),
        ("controller", f"{values['image']['registry']}/{values['image']['repository']}:{version}"),
    ):
        assert f"--target {target}" in header and image in header, f"{target} is not documented as {image}"
