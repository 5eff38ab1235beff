"""LangGraph stream chunks -> the Agent Server's stream events (event name, data), as `langgraph dev`
names them: `values`, `updates`, `custom`, `debug`, `tasks`, `checkpoints`, `messages` (the
`messages-tuple` mode: `[message chunk, metadata]`), and for the `messages` mode
`messages/metadata`, `messages/partial` (the message so far) and `messages/complete`. With
subgraphs an event from inside a subgraph is named `mode|ns1|ns2`."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message

# Stream modes a run may ask for, and the LangGraph mode each needs.
STREAM_MODES: dict[str, str] = {
    "values": "values",
    "updates": "updates",
    "custom": "custom",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
    "messages-tuple": "messages",
    "messages": "messages",
}


class Formatter:
    def __init__(self, stream_mode: tuple[str, ...] | list[str]) -> None:
        unknown = sorted(set(stream_mode) - set(STREAM_MODES))
        if unknown:
            raise ValueError(f"unsupported stream_mode {unknown}; supported: {sorted(STREAM_MODES)}")
        self.modes = set(stream_mode)
        self._messages: dict[str, BaseMessage] = {}

    def langgraph_modes(self) -> set[str]:
        return {STREAM_MODES[m] for m in self.modes}

    def feed(self, ns: tuple[str, ...], mode: str, chunk: Any) -> list[tuple[str, Any]]:
        suffix = "".join(f"|{part}" for part in ns)
        if mode == "messages":
            return self._message(suffix, chunk)
        if mode in self.modes:
            return [(mode + suffix, chunk)]
        return []

    def _message(self, suffix: str, chunk: tuple[BaseMessage, dict[str, Any]]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if "messages-tuple" in self.modes:
            out.append(("messages" + suffix, list(chunk)))
        if "messages" in self.modes:
            msg, meta = chunk
            key = msg.id or ""
            if key in self._messages:
                self._messages[key] = self._messages[key] + msg  # type: ignore[operator]
            else:
                self._messages[key] = msg
                out.append(("messages/metadata" + suffix, {key: {"metadata": meta}}))
            so_far = self._messages[key]
            if isinstance(msg, BaseMessageChunk):
                out.append(("messages/partial" + suffix, [so_far]))
            else:
                out.append(("messages/complete" + suffix, [message_chunk_to_message(so_far)]))  # type: ignore[arg-type]
        return out
