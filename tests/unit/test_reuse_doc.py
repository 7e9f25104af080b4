"""docs/reuse.md stays true: every operation, function and class it shows with arguments takes them.

The page shows arguments two ways. A listing, ``firewall(ssh_port, ssh_ports_in_use, ssh_limit, extra)``,
names parameters: they are the first parameters of the real signature, in its order, and name every
required one unless ``…`` says more follow. A call, ``Issuer(mode="letsencrypt", email=…)`` or the
example deploy's lines, binds to the real signature (``…`` standing for values or further arguments).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest
from pyinfra.api.arguments import all_argument_meta

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reuse.md"
EXAMPLE = ROOT / "examples" / "reuse" / "deploy.py"
# Keyword arguments pyinfra takes for itself on every operation (``name=``, ``_sudo=``, ...).
PYINFRA_ARGUMENTS = set(all_argument_meta) | {"name"}
CALL_SPAN = re.compile(r"^[A-Za-z_][\w.]*\(.*\)$", re.DOTALL)


def doc_text() -> str:
    return DOC.read_text()


def code_block() -> str:
    """The one Python block of the page: the example deploy."""
    (block,) = re.findall(r"^```python\n(.*?)^```", doc_text(), re.MULTILINE | re.DOTALL)
    return block


def prose() -> str:
    """The page without its code blocks."""
    return re.sub(r"^```.*?^```", "", doc_text(), flags=re.MULTILINE | re.DOTALL)


def call_spans() -> list[str]:
    """Inline code of the prose that reads as a call or a listing: ``name(...)``, on one line or two."""
    spans = [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose())]
    return [s.replace("…", "...") for s in spans if CALL_SPAN.match(s)]


def modules() -> list:
    """Every ``operations`` module the page names."""
    names = set(re.findall(r"\boperations(?:\.\w+)+", doc_text()))
    return [importlib.import_module(module_of(name)) for name in sorted(names)]


def module_of(dotted: str) -> str:
    """The module a dotted name of the page is or is in (``operations.app.app_present`` -> ``operations.app``)."""
    try:
        importlib.import_module(dotted)
    except ModuleNotFoundError:
        return dotted.rpartition(".")[0]
    return dotted


def resolve(dotted: str) -> list:
    """The objects a name of the page can mean: a dotted path, or a name defined in one of its modules."""
    if dotted.startswith("operations."):
        module, _, attr = dotted.rpartition(".")
        return [getattr(importlib.import_module(module), attr)]
    found = [getattr(m, dotted) for m in modules() if callable(getattr(m, dotted, None))]
    return list({id(obj): obj for obj in found}.values())


def signature(obj) -> inspect.Signature:
    """The signature a caller writes against: a pyinfra operation's own function, a class's constructor."""
    return inspect.signature(getattr(obj, "_inner", obj))


def is_listing(call: ast.Call) -> bool:
    """A call of bare names (and ``...``): it names parameters rather than passing values."""
    return not call.keywords and all(isinstance(a, ast.Name) or is_elision(a) for a in call.args)


def is_elision(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def listing_problem(call: ast.Call, sig: inspect.Signature) -> str | None:
    """What a listing of parameter names gets wrong against ``sig``, or None."""
    listed = [a.id for a in call.args if isinstance(a, ast.Name)]
    params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if listed != [p.name for p in params[: len(listed)]]:
        return f"lists {listed}, the signature starts {[p.name for p in params[: len(listed) + 1]]}"
    missing = [p.name for p in params if p.default is p.empty and p.name not in listed]
    if missing and not any(is_elision(a) for a in call.args):
        return f"leaves out the required {missing}"
    return None


def call_problem(call: ast.Call, sig: inspect.Signature) -> str | None:
    """What a call gets wrong against ``sig`` (arguments it does not take, required ones it leaves out), or None."""
    args = [None for a in call.args if not is_elision(a)]
    kwargs = {k.arg: None for k in call.keywords if k.arg not in PYINFRA_ARGUMENTS}
    bind = sig.bind_partial if any(is_elision(a) for a in call.args) else sig.bind
    try:
        bind(*args, **kwargs)
    except TypeError as e:
        return str(e)
    return None


def dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def span_problems(span: str) -> list[str]:
    """Every call in one inline span that does not match what it names."""
    problems = []
    for call in (n for n in ast.walk(ast.parse(span, mode="eval")) if isinstance(n, ast.Call)):
        name = dotted_name(call.func)
        if name is None:
            continue
        objects = resolve(name)
        if not objects:
            problems.append(f"`{span}`: no {name} in the modules the page names")
        for obj in objects:
            check = listing_problem if is_listing(call) else call_problem
            problem = check(call, signature(obj))
            if problem:
                problems.append(f"`{span}`: {name} {problem}")
    return problems


def imported(tree: ast.Module) -> dict[str, object]:
    """The names a module's ``from operations... import ...`` lines bind, to their objects."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module.startswith("operations"):
            module = importlib.import_module(node.module)
            names.update({a.asname or a.name: getattr(module, a.name) for a in node.names})
    return names


def test_the_page_shows_call_spans_to_check():
    """The span finder still sees the table and the prose (a format change would make the other tests vacuous)."""
    spans = call_spans()
    assert "firewall(ssh_port, ssh_ports_in_use, ssh_limit, extra)" in spans
    assert any(s.startswith("VenvAppSpec(") for s in spans)
    assert len(spans) > 30


@pytest.mark.parametrize("span", call_spans())
def test_every_listing_and_call_in_the_prose_matches_the_real_signature(span):
    assert span_problems(span) == []


def test_every_call_of_the_example_deploy_binds_to_the_real_signature():
    """The code block's calls of vpskit's operations take the arguments they are given."""
    tree = ast.parse(code_block())
    names = imported(tree)
    problems = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        obj = names.get(dotted_name(call.func))
        problem = obj and call_problem(call, signature(obj))
        if problem:
            problems.append(f"line {call.lineno}: {dotted_name(call.func)} {problem}")
    assert problems == []


def test_the_code_block_is_the_example_deploy_as_it_is():
    """The page shows examples/reuse/deploy.py below its docstring, unchanged."""
    source = EXAMPLE.read_text()
    docstring = ast.parse(source).body[0]
    body = source.splitlines(keepends=True)[docstring.end_lineno :]
    assert code_block() == "".join(body).lstrip("\n")


def test_the_example_deploys_imports_resolve():
    """Everything examples/reuse/deploy.py imports from vpskit and pyinfra exists under that name."""
    tree = ast.parse(EXAMPLE.read_text())
    missing = []
    for node in (n for n in tree.body if isinstance(n, ast.ImportFrom)):
        module = importlib.import_module(node.module)
        missing += [f"{node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)]
    assert missing == []
