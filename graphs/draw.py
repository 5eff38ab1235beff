"""`python -m graphs.draw`: each registered workflow drawn as Mermaid, from the code. The README
embeds this output; a test keeps the two identical."""

from __future__ import annotations

from graphs.registry import WORKFLOWS

_FRONT_MATTER = ("---", "config:", "  flowchart:", "    curve:")


def mermaid(name: str) -> str:
    builder = WORKFLOWS[name].build()
    lines = [
        line
        for line in builder.compile(name=name).get_graph().draw_mermaid().splitlines()
        if not line.startswith(_FRONT_MATTER) and "__error_handler__" not in line
    ]
    # LangGraph draws error handlers as loose boxes; draw what they do instead: on failure or
    # timeout the branch's fallback goes on to the handler's target (dotted edge).
    fallbacks = []
    for node, spec in builder.nodes.items():
        handler = getattr(spec, "error_handler_node", None)
        if handler:
            target = getattr(builder.nodes[handler].runnable, "afunc", None)
            then = getattr(target, "fallback_to", None)
            if then:
                fallbacks.append(f"\t{node} -. fallback .-> {then};")
    at = next(i for i, line in enumerate(lines) if line.startswith("\tclassDef"))
    return "\n".join([*lines[:at], *sorted(fallbacks), *lines[at:]]).strip()


def main() -> None:
    for name in WORKFLOWS:
        print(f"### {name}\n\n```mermaid\n{mermaid(name)}\n```\n")


if __name__ == "__main__":
    main()
