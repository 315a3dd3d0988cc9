"""No SQL is built from runtime values: every statement handed to a
database is a literal, or an f-string whose only holes are module constants
(column lists written once), the backend's dialect words (``Dialect``,
fixed per backend) or the core's status words (``Status.PENDING``, members
fixed at import), and every value travels as a ? parameter."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCES = sorted((ROOT / "psp_server").rglob("*.py"))
EXECUTES = {"execute", "executemany", "executescript"}
# Calls that pass on SQL checked where it was written, or that run the
# schema's own files (psp_server/storage/schema/*.sql).
FORWARDERS = {
    "psp_server/storage/postgres.py": {
        "execute",
        "executemany",
        "_executed",
        "_executed_many",
        "_pipelined",
    },
    "psp_server/storage/ddl.py": {"apply"},
}


def _constant_names(tree: ast.Module) -> set[str]:
    """Module-level names bound once to a string built only from literals
    and other such names."""
    names: set[str] = set()
    for node in tree.body:
        module = node.module if isinstance(node, ast.ImportFrom) else None
        if isinstance(node, ast.ImportFrom) and module and module.startswith("psp_server."):
            # Such names imported from another of our modules that binds them so.
            source = ROOT.joinpath(*module.split(".")).with_suffix(".py")
            if source.is_file():
                theirs = _constant_names(ast.parse(source.read_text(), str(source)))
                names.update(alias.name for alias in node.names if alias.name in theirs)
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if value is not None and _is_constant(value, names):
                names.update(
                    t.id for t in targets if isinstance(t, ast.Name) and t.id.lstrip("_").isupper()
                )
    return names


def _is_constant(node: ast.AST, names: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.JoinedStr):
        return all(
            isinstance(part, ast.Constant)
            or (
                isinstance(part, ast.FormattedValue)
                and (
                    _is_constant(part.value, names)
                    or _is_dialect_word(part.value)
                    or _is_status_word(part.value)
                )
            )
            for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_constant(node.left, names) and _is_constant(node.right, names)
    if isinstance(node, ast.Call):  # ", ".join(<constant genexp over a constant>) and the like
        return isinstance(node.func, ast.Attribute) and all(
            isinstance(
                sub,
                ast.Constant
                | ast.Name
                | ast.Attribute
                | ast.comprehension
                | ast.GeneratorExp
                | ast.BinOp
                | ast.Call
                | ast.Load
                | ast.Store
                | ast.Add
                | ast.keyword,
            )
            and not (
                isinstance(sub, ast.Name)
                and sub.id not in names
                and not _is_loop_variable(node, sub.id)
            )
            for sub in ast.walk(node)
        )
    return False


def _is_dialect_word(node: ast.AST) -> bool:
    """``self._dialect.for_update``, ``dialect.indexed_by("an_index")``:
    an attribute of the backend's Dialect, called with literals only."""
    if isinstance(node, ast.Call):
        if not all(isinstance(arg, ast.Constant) for arg in node.args) or node.keywords:
            return False
        node = node.func
    if not isinstance(node, ast.Attribute):
        return False
    owner = node.value
    return (isinstance(owner, ast.Name) and owner.id == "dialect") or (
        isinstance(owner, ast.Attribute)
        and owner.attr == "_dialect"
        and isinstance(owner.value, ast.Name)
        and owner.value.id == "self"
    )


def _is_status_word(node: ast.AST) -> bool:
    """``Status.PENDING``: a member of the core's Status, a StrEnum whose
    members format as their words."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Status"
        and node.attr.isupper()
    )


def _is_loop_variable(node: ast.AST, name: str) -> bool:
    return any(
        isinstance(sub, ast.comprehension)
        and isinstance(sub.target, ast.Name)
        and sub.target.id == name
        for sub in ast.walk(node)
    )


def test_every_statement_is_a_literal_or_built_from_constants() -> None:
    offences = []
    checked = 0
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        constants = _constant_names(tree)
        forwarding = FORWARDERS.get(str(path.relative_to(ROOT)), set())
        exempt = {
            id(call)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            and function.name in forwarding
            for call in ast.walk(function)
        }
        for node in ast.walk(tree):
            if id(node) in exempt:
                continue
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in EXECUTES
                and node.args
            ):
                continue
            checked += 1
            if not _is_constant(node.args[0], constants):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    print(f"\n{checked} SQL statements checked in {len(SOURCES)} files")
    assert checked > 50
    assert offences == [], "SQL built from runtime values at: " + ", ".join(offences)


def test_the_check_catches_a_value_in_the_sql() -> None:
    bad = ast.parse('def f(conn, x):\n    conn.execute(f"SELECT * FROM t WHERE id = {x}")\n')
    call = next(n for n in ast.walk(bad) if isinstance(n, ast.Call))
    assert not _is_constant(call.args[0], _constant_names(bad))
    concat = ast.parse('def f(conn, x):\n    conn.execute("SELECT " + x)\n')
    call = next(n for n in ast.walk(concat) if isinstance(n, ast.Call))
    assert not _is_constant(call.args[0], _constant_names(concat))


def test_a_status_word_is_a_constant_and_a_status_value_is_not() -> None:
    word = ast.parse("_PAID = f\"status = '{Status.PAID}'\"\n")
    assert _constant_names(word) == {"_PAID"}
    read = ast.parse("_PAID = f\"status = '{status.value}'\"\n")
    assert _constant_names(read) == set()
