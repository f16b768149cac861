"""One list of sources, everything derived from it; no import circles; no layer imports upwards.

The import graph is read from the source files (every `import` statement, module level or inside
a function — a lazy import is still a dependency), so the test sees what a reader sees.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("arbitra", "ingest", "marts", "scoring", "api", "devtools")
# Data flows one way (ARCHITECTURE §2): a layer may import those before it, never after.
LAYERS = ("ingest", "marts", "scoring", "api")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            modules[_module_name(path)] = path
    return modules


def _imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """Project modules `module` imports (resolving `from package import submodule` too)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            # The longest project module the name starts with.
            candidate = name
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != module:
                found.add(candidate)
    return found


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    modules = _project_modules()
    known = set(modules)
    return {module: _imports_of(path, module, known) for module, path in modules.items()}


def test_there_is_no_import_circle_in_the_project(import_graph):
    # Package __init__ modules that only exist for import paths are skipped as cycle members:
    # `a/__init__` → `a.b` is how Python resolves `a.b`, not a dependency of a's code.
    graph = {module: {target for target in targets if not module.startswith(target + ".")}
             for module, targets in import_graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == [], "import circles:\n" + "\n".join(" → ".join(cycle) for cycle in cycles)


def test_no_layer_imports_a_layer_after_it_and_no_production_app_imports_devtools(import_graph):
    offences = []
    for module, targets in import_graph.items():
        app = module.split(".")[0]
        for target in targets:
            target_app = target.split(".")[0]
            if app in LAYERS and target_app in LAYERS and LAYERS.index(target_app) > LAYERS.index(app):
                offences.append(f"{module} imports {target} (a later layer)")
            if app != "devtools" and target_app == "devtools":
                offences.append(f"{module} imports {target} (demo apparatus)")
    assert offences == []


def test_source_packages_do_not_import_tasks_or_the_registry(import_graph):
    offences = [
        f"{module} imports {target}"
        for module, targets in import_graph.items()
        if module.startswith("ingest.sources.")
        for target in targets
        if target in {"ingest.tasks", "ingest.registry", "ingest.services"} or target.endswith(".tasks")
    ]
    assert offences == []


def test_a_source_package_imports_no_other_source_package(import_graph):
    def package_of(module: str) -> str | None:
        parts = module.split(".")
        is_package = len(parts) > 2 and parts[:2] == ["ingest", "sources"] and (ROOT / "ingest/sources" / parts[2]).is_dir()
        return parts[2] if is_package else None

    offences = [
        f"{module} imports {target}"
        for module, targets in import_graph.items()
        for target in targets
        if package_of(module) and package_of(target) and package_of(module) != package_of(target)
    ]
    assert offences == []


def test_every_source_package_imports_and_the_registry_derives_everything_from_the_one_list():
    import ingest.sources as sources_package
    from arbitra.schedules import periodic_jobs
    from ingest.registry import INGEST_JOBS, SOURCES, dead_letter_retry_for, replay_targets
    from ingest.sources.base import Source
    from ingest.tasks import JOB_TASKS

    packages = sorted(info.name for info in pkgutil.iter_modules(sources_package.__path__) if info.ispkg)
    declared = []
    for name in packages:
        module = importlib.import_module(f"ingest.sources.{name}.source")
        assert isinstance(module.SOURCE, Source)
        declared.append(module.SOURCE)
    assert sorted(source.name for source in SOURCES) == sorted(source.name for source in declared), (
        "every source package is in the one list, and nothing else is"
    )

    job_names = {f"{source.name}.{job.stream}" for source in SOURCES for job in source.jobs}
    assert set(INGEST_JOBS) == job_names
    assert set(JOB_TASKS) == job_names
    assert {task.name for task in JOB_TASKS.values()} == {f"ingest.{name}" for name in job_names}
    scheduled = {job.task for job in periodic_jobs()}
    assert {f"ingest.{name}" for name in job_names} <= scheduled
    assert set(replay_targets()) == {target.name for source in SOURCES for target in source.replay_targets}
    for source in SOURCES:
        assert dead_letter_retry_for(source.name) is source.dead_letter_retry


def test_the_v2_jobs_are_registered():
    from ingest.registry import INGEST_JOBS

    assert {"data_api.trades", "data_api.gaps", "data_api.wallet_history", "data_api.activity",
            "data_api.positions", "data_api.resolutions", "gamma.markets", "gamma.pending_markets",
            "offchain.feeds"} <= set(INGEST_JOBS)
