"""The harness's modules import each other in layers: no import circle, counting the imports inside
functions too (a lazy import still ties the modules together), and no module below the plugin
imports it."""
import ast
from pathlib import Path

HARNESS = Path(__file__).parents[1] / "harness"


def imports() -> dict[str, set[str]]:
    """module -> the harness modules it imports anywhere in its text."""
    graph = {}
    for path in sorted(HARNESS.glob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
                if node.module == "harness":
                    found |= {alias.name for alias in node.names if (HARNESS / f"{alias.name}.py").exists()}
                else:
                    found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("harness.")}
        graph[path.stem] = found - {path.stem}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, once (depth-first search over the modules)."""
    found, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == "open":
                found.append(trail[trail.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, trail + [dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_no_import_circle_in_the_harness():
    assert cycles(imports()) == []


def test_nothing_imports_the_plugin_and_the_training_loop_imports_no_session_module():
    graph = imports()
    assert not [m for m, deps in graph.items() if "plugin" in deps]
    assert not graph["train"] & {"plugin", "progress", "report", "evidence", "session", "options"}


def test_the_search_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
