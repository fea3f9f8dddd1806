"""What the shipped Kubernetes and systemd examples say fits superd: the grace
period outlasts preStop plus shutdown_timeout, the embedded config parses, the
unit waits long enough. (tests/system/test_examples.py runs the examples.)
"""

from __future__ import annotations

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(30)


def test_kubernetes_example_budget_and_embedded_config():
    """preStop + shutdown_timeout must fit inside terminationGracePeriodSeconds."""
    import re
    import textwrap

    from supervisor import config as cfg

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = (REPO / "examples/kubernetes/deployment.yaml").read_text()
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", text).group(1))
    pre_stop = int(re.search(r'command: \["sleep", "(\d+)"\]', text).group(1))
    block = text.split("superd.toml: |\n", 1)[1]
    embedded = textwrap.dedent(block)
    parsed = cfg.parse(tomllib.loads(embedded), None, {})
    assert pre_stop + parsed.daemon.shutdown_timeout < grace
    assert {p.name for p in parsed.programs} == {"web", "producer", "worker"}
    # the image's ENTRYPOINT already gives -c: args must not repeat it
    assert not re.search(r"^\s*args:", text.split("superd.toml: |", 1)[0], re.M)


def test_docker_example_names_its_container_ignores_the_clutter_and_feeds_its_workers():
    from supervisor import config as cfg

    dockerfile = (REPO / "examples/docker/Dockerfile").read_text()
    assert "docker run --rm --name superd-demo" in dockerfile and "docker stop -t 30 superd-demo" in dockerfile
    assert "producer.py" in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "**/__pycache__"} <= set(ignored)
    parsed = cfg.load(str(REPO / "examples/docker/superd.toml"), {})
    assert {p.name for p in parsed.programs} == {"web", "producer", "worker"}


def test_demo_producer_is_slower_than_its_workers():
    from supervisor import config as cfg

    for path in ("examples/demo/superd.toml", "examples/docker/superd.toml"):
        parsed = cfg.load(str(REPO / path), {})
        programs = {p.name: p for p in parsed.programs}
        every = float(dict(programs["producer"].environment)["EVERY"])
        job = float(dict(programs["worker"].environment).get("JOB_SECONDS", "3"))  # worker.py's default
        assert 1 / every < programs["worker"].numprocs / job, path


def test_systemd_unit_outlasts_the_shutdown_timeout():
    import re

    unit = (REPO / "examples/systemd/superd.service").read_text()
    assert "Type=notify" in unit and "KillMode=mixed" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    stop = int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M).group(1))
    assert stop > 25  # superd's default shutdown_timeout
