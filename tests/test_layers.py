"""The library's layers, read from its source: each module imports only the layers below its own
(or modules of its own package), and no network or method imports the tiny stand-in writer.

Layers, lowest first (styleclip_core/__init__.py describes them): the shared vocabulary
(errors, precision, progress, values), ops, models, formats, then edits and photos side by side (neither
may import the other), then video (which composes both), then evaluation, then the command line.
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY = os.path.join(ROOT, "styleclip_core")
RANK = {"errors": 0, "precision": 0, "progress": 0, "schedules": 0, "distributed": 0, "values": 0, "ops": 1, "models": 2, "formats": 3, "edits": 4, "photos": 4, "video": 5, "evaluation": 6, "__main__": 7}


def modules() -> dict[str, str]:
    """Dotted module name (under styleclip_core) -> file, for every module of the library."""
    out = {}
    for folder, _, files in os.walk(LIBRARY):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), LIBRARY)[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__") if rel != "__init__" else ""] = os.path.join(folder, f)
    return out


def imports(name: str, path: str) -> list[tuple[str, int]]:
    """Library modules ``name`` imports (at the top or inside functions), with the line."""
    package = name.rsplit(".", 1)[0] if "." in name else ""
    if os.path.basename(path) == "__init__.py":
        package = name
    found = []
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "styleclip_core":
                target = node.module[len("styleclip_core."):]
            else:
                continue
            # each imported name, under its module: a submodule ("from ..formats import
            # tiny_models") or a name in a module ("from ..formats.files import save_atomic")
            targets = [f"{target}.{a.name}" if target else a.name for a in node.names]
            found += [(t, node.lineno) for t in targets]
        elif isinstance(node, ast.Import):
            found += [(a.name[len("styleclip_core."):], node.lineno) for a in node.names if a.name.startswith("styleclip_core.")]
    return found


def layer(name: str) -> str:
    return name.split(".")[0]


def is_within(target: str, module: str) -> bool:
    return target == module or target.startswith(module + ".")


def test_every_module_belongs_to_a_layer():
    unknown = sorted(n for n in modules() if n and layer(n) not in RANK)
    assert not unknown, f"modules outside the layers {sorted(RANK)}: {unknown}; put them in a layer and add it to RANK"


def test_imports_go_only_down_the_layers():
    bad = []
    for name, path in modules().items():
        if not name:
            assert imports(name, path) == [], "styleclip_core/__init__.py imports nothing (each layer is imported where used)"
            continue
        for target, line in imports(name, path):
            if layer(target) == layer(name):
                continue
            if RANK[layer(target)] >= RANK[layer(name)]:
                bad.append(f"styleclip_core/{name.replace('.', '/')} line {line} imports {target} ({layer(target)} is not below {layer(name)})")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_upward_and_sideways_imports(tmp_path):
    """The parser resolves relative imports the way Python does (a check that could not fail
    would prove nothing)."""
    source = tmp_path / "x.py"
    source.write_text("from ..formats.files import save_atomic\nfrom . import generator\ndef f():\n    from ..edits import masks\n")
    assert [t for t, _ in imports("models.x", str(source))] == ["formats.files.save_atomic", "models.generator", "edits.masks"]
    source.write_text("from .progress import Progress\nfrom .formats import tiny_models\nimport styleclip_core.edits.masks\n")
    assert [t for t, _ in imports("__main__", str(source))] == ["progress.Progress", "formats.tiny_models", "edits.masks"]


def test_no_network_or_method_imports_the_tiny_stand_in_writer():
    users = sorted(name for name, path in modules().items() for target, _ in imports(name, path) if is_within(target, "formats.tiny_models"))
    assert users == ["__main__"], f"only the command line may import formats.tiny_models (writing stand-ins); found {users}"
