"""The image's invariants, read from deploy/container/Containerfile without building it (the
build and its smoke test are `make image`): multi-stage from a BASE argument, the locked
environment made by the pinned uv, no compiler in the final stage, a numeric non-root user,
a read-only-friendly layout, OCI labels, a health check on /healthz, the entry point."""

from __future__ import annotations

import re

import pytest

from tests.helpers.containerfile import (
    CONTAINER,
    ROOT,
    Containerfile,
    Instruction,
    containerfile,
    parse,
)

OCI_LABELS = ("version", "source", "revision", "created", "title", "licenses")
# Packages and tools that compile: none may be installed in (or inherited by) the final stage.
COMPILERS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|build-essential|make|cpp|python3(\.\d+)?-dev|libc6-dev|"
    r"libpq-dev|cargo|rustc)\b"
)


@pytest.fixture(scope="module")
def image() -> Containerfile:
    return containerfile()


def test_the_base_is_a_build_argument(image: Containerfile) -> None:
    """ARG BASE before the first FROM, defaulting to the debootstrap base build.sh makes."""
    assert image.global_args.get("BASE") == "localhost/medops-base:bookworm"
    assert image.stages[0].base == "${BASE}"


def test_multi_stage_and_the_final_stage_copies_only_the_environment(
    image: Containerfile,
) -> None:
    names = [s.name for s in image.stages]
    assert len(image.stages) >= 2
    assert "builder" in names
    copies = image.final.all("COPY")
    from_builder = [c for c in copies if c.args.startswith("--from=builder ")]
    assert [c.args for c in from_builder] == ["--from=builder /opt/medops /opt/medops"]
    assert image.final.base != "builder"


def test_the_builder_syncs_the_lock_with_the_pinned_uv(image: Containerfile) -> None:
    builder = image.stage("builder")
    runs = " ".join(r.args for r in builder.all("RUN"))
    assert "uv sync --frozen --no-dev --no-editable" in runs
    assert "fetch_uv.py /tmp/uv-requirements.txt /opt/uv/bin" in runs  # sha256-checked
    envs: dict[str, str] = {}
    for env in builder.all("ENV"):
        envs |= env.pairs()
    assert envs["UV_PROJECT_ENVIRONMENT"] == "/opt/medops"
    assert envs["UV_COMPILE_BYTECODE"] == "1"  # the root is read-only at run time
    assert envs["UV_PYTHON_DOWNLOADS"] == "never"


def test_uv_is_pinned_at_the_makefiles_version() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned is not None
    requirements = (CONTAINER / "uv-requirements.txt").read_text()
    assert re.search(rf"^uv=={re.escape(pinned.group(1))} \\$", requirements, re.MULTILINE)
    hashes = re.findall(r"--hash=sha256:([0-9a-f]+)", requirements)
    assert hashes
    assert all(len(h) == 64 for h in hashes)


def test_no_compiler_in_the_final_stage(image: Containerfile) -> None:
    """Neither the final stage nor the stages it is built FROM install a compiler."""
    for stage in image.lineage(image.final):
        for run in stage.all("RUN"):
            assert COMPILERS.search(run.args) is None, (stage.name, run.args)


def test_a_numeric_non_root_user(image: Containerfile) -> None:
    user = image.final.last("USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) != 0
    assert int(gid) != 0


def test_writable_only_in_the_home_volume_and_tmp(image: Containerfile) -> None:
    envs: dict[str, str] = {}
    for env in image.final.all("ENV"):
        envs |= env.pairs()
    assert envs["MEDOPS_HOME"] == "/var/lib/medops"
    assert envs["PYTHONDONTWRITEBYTECODE"] == "1"
    assert image.final.last("VOLUME").exec_form() == ["/var/lib/medops"]
    assert image.final.last("WORKDIR").args == "/var/lib/medops"


def test_oci_labels_from_build_arguments(image: Containerfile) -> None:
    labels: dict[str, str] = {}
    for label in image.final.all("LABEL"):
        labels |= label.pairs()
    declared = {a.args.split("=")[0] for a in image.final.all("ARG")}
    for key in OCI_LABELS:
        assert f"org.opencontainers.image.{key}" in labels, key
    for key in ("version", "source", "revision", "created"):
        value = labels[f"org.opencontainers.image.{key}"]
        argument = re.fullmatch(r"\$\{(\w+)\}", value)
        assert argument is not None, value
        assert argument.group(1) in declared


def test_build_sh_passes_every_build_argument(image: Containerfile) -> None:
    build = (CONTAINER / "build.sh").read_text()
    declared = set(image.global_args)
    for stage in image.stages:
        declared |= {a.args.split("=")[0] for a in stage.all("ARG")}
    passed = set(re.findall(r"--build-arg (\w+)=", build))
    assert declared - {"PG_MAJOR"} <= passed  # PG_MAJOR: 15 is bookworm's, the default
    assert passed <= declared


def test_a_health_check_on_healthz(image: Containerfile) -> None:
    check = image.final.last("HEALTHCHECK").args
    command = check.split(" CMD ", 1)
    assert len(command) == 2, check
    argv = Instruction("CMD", command[1]).exec_form()
    assert argv[-1] == "/usr/local/bin/medops-healthcheck"
    copied = [c.args for c in image.final.all("COPY")]
    assert "deploy/container/healthcheck.py /usr/local/bin/medops-healthcheck" in copied
    assert "/healthz" in (CONTAINER / "healthcheck.py").read_text()


def test_entry_point_command_and_port(image: Containerfile) -> None:
    entrypoint = image.final.last("ENTRYPOINT").exec_form()
    assert len(entrypoint) == 1
    assert entrypoint[0].endswith("/medops")
    listen_everywhere = "0.0.0.0"  # noqa: S104 - a container listens on its own interfaces
    assert image.final.last("CMD").exec_form() == [
        "server",
        "--host",
        listen_everywhere,
        "--port",
        "8000",
    ]
    assert image.final.last("EXPOSE").args == "8000"


def test_no_apt_lists_or_caches_left(image: Containerfile) -> None:
    for stage in image.lineage(image.final):
        for run in stage.all("RUN"):
            if "apt-get install" in run.args:
                assert "--no-install-recommends" in run.args
                assert "rm -rf /var/lib/apt/lists/*" in run.args


def test_the_ignore_file_lets_in_what_the_build_copies(image: Containerfile) -> None:
    """BuildKit reads Containerfile.dockerignore (build.sh passes it to buildah): every COPY
    source from the context is re-included after its `*`."""
    lines = (CONTAINER / "Containerfile.dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for stage in image.stages:
        for copy in stage.all("COPY"):
            if copy.args.startswith("--from="):
                continue
            *sources, _destination = copy.args.split()
            for source in sources:
                assert source.rstrip("/") in allowed, source


def test_the_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse(
        "ARG BASE=x\nFROM ${BASE} AS a\n# note\nRUN one \\\n    # inside\n    two\n"
        'FROM a\nLABEL k="v w" j=1\nCMD ["x", "y"]\n'
    )
    assert [s.name for s in parsed.stages] == ["a", None]
    assert parsed.stages[0].last("RUN").args == "one two"
    assert parsed.final.last("LABEL").pairs() == {"k": "v w", "j": "1"}
    assert parsed.lineage(parsed.final)[-1].name == "a"
