"""Every public function, method and class of the packages has a docstring.

Public: the name does not start with ``_``, at module level or in a public class (nested functions are
private by construction). Exempt, because the reader already has the text:

- a method that overrides a documented method of a base class defined in the packages (``help()`` and
  ``inspect.getdoc`` show the base's docstring, which states the contract the override keeps);
- a property whose body is one ``return`` statement (its name and return annotation say it all);
- a ``typing.overload`` signature (the implementation below it carries the docstring);
- the ``test_*`` checks of :mod:`optimizer.testing`'s conformance suites, whose names state the property
  checked (their failure messages say what broke).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT

PACKAGES = ("optimizer", "simulators", "surrogates")


@dataclass
class ClassInfo:
    bases: list[str]  # base class names as written (last dotted part)
    documented: set[str]  # methods with a docstring


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Subscript):  # Generic[T], Registry[...]
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _functions(body: list[ast.stmt]) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def class_index(trees: list[tuple[Path, ast.Module]]) -> dict[str, ClassInfo]:
    """Every class of the packages by name, with its bases and documented methods."""
    out: dict[str, ClassInfo] = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                info = out.setdefault(node.name, ClassInfo([], set()))
                info.bases += [_base_name(b) for b in node.bases]
                info.documented |= {f.name for f in _functions(node.body) if ast.get_docstring(f)}
    return out


def inherits_doc(cls: str, method: str, index: dict[str, ClassInfo]) -> bool:
    """Whether a base class of ``cls`` (transitively) documents ``method``."""
    seen, todo = set(), list(index[cls].bases)
    while todo:
        base = todo.pop()
        if base in seen or base not in index:
            continue
        seen.add(base)
        if method in index[base].documented:
            return True
        todo += index[base].bases
    return False


def _trivial_property(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    is_property = any(_base_name(d) == "property" for d in fn.decorator_list)
    return is_property and len(fn.body) == 1 and isinstance(fn.body[0], ast.Return)


def undocumented() -> list[str]:
    """``path:line: name`` of every public definition without a docstring that no exemption covers."""
    trees = list(_modules())
    index = class_index(trees)
    out: list[str] = []
    for path, tree in trees:
        where = path.relative_to(ROOT)
        is_testing = where.as_posix() == "optimizer/testing.py"
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None:
                    out.append(f"{where}:{node.lineno}: {node.name}")
                if not isinstance(node, ast.ClassDef):
                    continue
                for fn in _functions(node.body):
                    if fn.name.startswith("_") or ast.get_docstring(fn) is not None:
                        continue
                    overload = any(_base_name(d) == "overload" for d in fn.decorator_list)
                    if inherits_doc(node.name, fn.name, index) or _trivial_property(fn) or overload:
                        continue
                    if is_testing and fn.name.startswith("test_"):
                        continue
                    out.append(f"{where}:{fn.lineno}: {node.name}.{fn.name}")
    return out


def test_every_public_definition_has_a_docstring() -> None:
    missing = undocumented()
    assert missing == [], f"{len(missing)} public definitions without a docstring:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_docstring_and_the_exemptions() -> None:
    tree = ast.parse(
        "class Base:\n    def run(self):\n        '''Run.'''\n"
        "class Impl(Base):\n    '''Impl.'''\n    def run(self):\n        pass\n    def other(self):\n        pass\n"
        "    @property\n    def size(self) -> int:\n        return 1\n")
    index = class_index([(Path("m.py"), tree)])
    assert inherits_doc("Impl", "run", index) and not inherits_doc("Impl", "other", index)
    size = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "size"][0]
    assert _trivial_property(size)
