"""The project runs from its root: `import trace` must give ours, and the layers' arrows point inward."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_trace_gives_the_domain_package() -> None:
    import trace

    assert Path(trace.__file__).resolve().parent == ROOT / "trace"
    assert getattr(trace, "HYTRACE_DOMAIN", False)


def test_python_m_from_the_root_finds_our_trace() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import trace; print(trace.__file__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).resolve() == ROOT / "trace" / "__init__.py"


def _imports(folder: str) -> list[tuple[str, str]]:
    found = []
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), a.name.split(".")[0]) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return found


def test_trace_knows_nothing_of_http_celery_or_outer_layers() -> None:
    bad = [(f, m) for f, m in _imports("trace") if m in {"fastapi", "starlette", "celery", "api", "workers", "labels"}]
    assert bad == []


def test_labels_is_pure_rendering() -> None:
    bad = [
        (f, m)
        for f, m in _imports("labels")
        if m in {"fastapi", "starlette", "celery", "sqlmodel", "sqlalchemy", "api", "workers", "trace"}
    ]
    assert bad == []


def test_workers_do_not_import_the_http_layer() -> None:
    assert [(f, m) for f, m in _imports("workers") if m in {"fastapi", "starlette", "api"}] == []


def test_today_is_defined_once() -> None:
    """The province's date has one definition (trace.platform.timeutil.today); the server's own date is wrong."""
    copies = []
    for folder in ("trace", "api", "workers", "labels"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), 1):
                if "date.today()" in line or line.lstrip().startswith(
                    ("def today(", "def _today(", "def local_today(")
                ):
                    copies.append(f"{path.relative_to(ROOT)}:{number}")
    assert copies == ["trace/platform/timeutil.py:" + str(_line_of("trace/platform/timeutil.py", "def today("))]


def _line_of(name: str, start: str) -> int:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.lstrip().startswith(start))
