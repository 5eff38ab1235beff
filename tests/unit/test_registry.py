"""One registry: `langgraph.json` lists exactly its workflows, each importable and compiled
without a checkpointer (as `langgraph dev` requires), and the README draws each from code."""

from __future__ import annotations

import importlib.util
import json

from langgraph.graph.state import CompiledStateGraph

from core.settings import ROOT
from graphs.draw import mermaid
from graphs.registry import WORKFLOWS, langgraph_json_graphs


def test_langgraph_json_lists_the_registry() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["graphs"] == langgraph_json_graphs()
    assert config["dependencies"] == ["."]


def test_every_listed_graph_imports_and_compiles_without_a_checkpointer() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    for name, ref in config["graphs"].items():
        path, attr = ref.split(":")
        spec = importlib.util.spec_from_file_location(f"studio_{name}", ROOT / path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        graph = getattr(module, attr)
        assert isinstance(graph, CompiledStateGraph)
        assert graph.checkpointer is None
        assert (
            WORKFLOWS[name].build().compile(name=name).get_graph().nodes.keys()
            == graph.get_graph().nodes.keys()
        )


def test_readme_draws_every_graph_from_code() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in WORKFLOWS:
        assert f"```mermaid\n{mermaid(name)}\n```" in readme, (
            f"README's {name} graph is stale: run python -m graphs.draw"
        )


def test_chat_graph_shape() -> None:
    drawn = mermaid("chat")
    for edge in (
        "__start__ --> detect_emotion",
        "__start__ --> retrieve_memories",
        "__start__ --> load_progress",
        "detect_emotion --> compose_reply",
        "retrieve_memories --> compose_reply",
        "load_progress --> compose_reply",
        "compose_reply --> remember_exchange",
        "remember_exchange --> __end__",
        "detect_emotion -. fallback .-> compose_reply",
    ):
        assert edge in drawn


def test_readme_documents_every_setting() -> None:
    from core.settings import Settings

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Architecture")]
    missing = [n.upper() for n in Settings.model_fields if f"`{n.upper()}`" not in table]
    assert missing == []
