"""The plugin author's guide keeps up with the code: every hook spec is documented with its arguments,
and every code block quoted from the reference backend is that backend's code.

A quoted block sits under ``<!-- excerpt: PATH#NAME -->`` in the doc; in the file at PATH (from the
repository root) the excerpt is the lines between ``# --8<-- [start:NAME]`` and ``# --8<-- [end:NAME]``.
"""

from __future__ import annotations

import difflib
import re
import textwrap
from pathlib import Path

import pytest

from kernai.plugins import new_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-a-backend.md"
REFERENCE = (
    ROOT / "contrib_backends" / "reference" / "kernai_reference" / "__init__.py",
    ROOT / "contrib_backends" / "reference" / "tests" / "test_conformance.py",
)

QUOTE = re.compile(r"<!-- excerpt: (?P<path>[^#\s]+)#(?P<name>[\w-]+) -->\n```python\n(?P<code>.*?)```", re.S)
MARK = re.compile(r"^\s*# --8<-- \[(?P<edge>start|end):(?P<name>[\w-]+)\]\s*$")
HOOK_HEADING = re.compile(r"^#+ `(?P<name>\w+)\((?P<args>[^)]*)\)`", re.M)
LOCAL_PAGE = re.compile(r"\]\((?P<page>[\w-]+\.md)(?:#[\w-]*)?\)")


def excerpts(path: Path) -> dict[str, str]:
    """The marked excerpts of a source file, by name, dedented, without the marker lines."""
    found: dict[str, str] = {}
    open_at: dict[str, int] = {}
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        if (mark := MARK.match(line)) is None:
            continue
        if mark["edge"] == "start":
            open_at[mark["name"]] = number + 1
        else:
            body = [text for text in lines[open_at.pop(mark["name"]) : number] if not MARK.match(text)]
            found[mark["name"]] = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
    assert not open_at, f"{path}: excerpts started and never ended: {sorted(open_at)}"
    return found


def guide_pages() -> list[Path]:
    """The guide and the pages of docs/ it links to (a hook may be documented on a linked page)."""
    linked = {GUIDE.parent / m["page"] for m in LOCAL_PAGE.finditer(GUIDE.read_text())}
    return [GUIDE, *sorted(page for page in linked if page.exists() and page != GUIDE)]


def hook_specs() -> dict[str, str]:
    """Every hook spec the kernel declares, read from the plugin manager: name -> argument list."""
    relay = new_plugin_manager().hook
    return {
        name: ", ".join(caller.spec.argnames)
        for name, caller in vars(relay).items()
        if not name.startswith("_") and caller.spec is not None
    }


def documented_hooks() -> dict[str, tuple[str, Path]]:
    headings: dict[str, tuple[str, Path]] = {}
    for page in guide_pages():
        for match in HOOK_HEADING.finditer(page.read_text()):
            headings.setdefault(match["name"], (match["args"], page))
    return headings


def test_every_hook_spec_is_documented_with_its_arguments() -> None:
    documented = documented_hooks()
    for name, args in hook_specs().items():
        assert name in documented, (
            f"hook '{name}' has no heading '### `{name}({args})`' in {GUIDE.name} or a page it links to"
        )
        shown, page = documented[name]
        assert shown == args, f"{page.name} documents `{name}({shown})`, the spec takes ({args})"


def test_every_documented_hook_exists() -> None:
    specs = hook_specs()
    for name, (_, page) in documented_hooks().items():
        assert name in specs, f"{page.name} documents a hook '{name}' that kernai.hookspecs does not declare"


def test_every_hook_spec_has_a_docstring() -> None:
    relay = new_plugin_manager().hook
    for name in hook_specs():
        spec = getattr(relay, name).spec
        assert spec is not None and (spec.function.__doc__ or "").strip(), f"hook '{name}' has no docstring"


QUOTES = [
    pytest.param(m["path"], m["name"], m["code"], id=f"{m['path'].rsplit('/', 1)[-1]}#{m['name']}")
    for m in QUOTE.finditer(GUIDE.read_text())
]


@pytest.mark.parametrize(("path", "name", "code"), QUOTES)
def test_quoted_code_is_the_reference_backends(path: str, name: str, code: str) -> None:
    source = excerpts(ROOT / path)
    assert name in source, f"{GUIDE.name} quotes {path}#{name}, which has no '# --8<-- [start:{name}]' marker"
    if code != source[name]:
        diff = "".join(
            difflib.unified_diff(
                code.splitlines(keepends=True),
                source[name].splitlines(keepends=True),
                f"{GUIDE.name} (quoted)",
                f"{path}#{name} (the code)",
            )
        )
        pytest.fail(
            f"{GUIDE.name} quotes {path}#{name}, and the code changed since: copy the excerpt between its "
            f"markers into the block under '<!-- excerpt: {path}#{name} -->'.\n{diff}"
        )


def test_every_marked_excerpt_is_quoted() -> None:
    quoted = {(m["path"], m["name"]) for m in QUOTE.finditer(GUIDE.read_text())}
    for source in REFERENCE:
        path = source.relative_to(ROOT).as_posix()
        for name in excerpts(source):
            assert (path, name) in quoted, f"{path} marks an excerpt '{name}' that {GUIDE.name} never quotes"
