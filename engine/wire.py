"""LangGraph stream chunks -> the Agent Server's stream events (event name, data), as `langgraph dev`
names them: `values`, `updates`, `custom`, `debug`, `tasks`, `checkpoints`, `messages` (the
`messages-tuple` mode: `[message chunk, metadata]`), and for the `messages` mode
`messages/metadata`, `messages/partial` (the message so far) and `messages/complete`. With
subgraphs an event from inside a subgraph is named `mode|ns1|ns2`. The `events` mode is every
callback event of the run (`astream_events` v2) except the run's own stream chunks, which feed
the other modes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message

EVENTS = "events"

# Stream modes a run may ask for, and the LangGraph mode each needs (None: no LangGraph mode; the
# engine streams with `astream_events` instead).
STREAM_MODES: dict[str, str | None] = {
    "values": "values",
    "updates": "updates",
    "custom": "custom",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
    "messages-tuple": "messages",
    "messages": "messages",
    EVENTS: None,
}


class Formatter:
    def __init__(self, stream_mode: tuple[str, ...] | list[str]) -> None:
        unknown = sorted(set(stream_mode) - set(STREAM_MODES))
        if unknown:
            raise ValueError(f"unsupported stream_mode {unknown}; supported: {sorted(STREAM_MODES)}")
        self.modes = set(stream_mode)
        self._messages: dict[str, BaseMessage] = {}

    @property
    def events(self) -> bool:
        return EVENTS in self.modes

    def langgraph_modes(self) -> set[str]:
        return {lg for m in self.modes if (lg := STREAM_MODES[m]) is not None}

    def feed(self, ns: tuple[str, ...], mode: str, chunk: Any) -> list[tuple[str, Any]]:
        suffix = "".join(f"|{part}" for part in ns)
        if mode == "messages":
            return self._message(suffix, chunk)
        if mode == "debug" and mode in self.modes:
            return [(mode + suffix, _debug(chunk))]
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
                # A message streamed in pieces: each piece is a chunk of the one before.
                self._messages[key] = cast(BaseMessageChunk, self._messages[key]) + msg
            else:
                self._messages[key] = msg
                out.append(("messages/metadata" + suffix, {key: {"metadata": meta}}))
            so_far = self._messages[key]
            if isinstance(msg, BaseMessageChunk):
                out.append(("messages/partial" + suffix, [so_far]))
            else:
                out.append(("messages/complete" + suffix, [message_chunk_to_message(so_far)]))
        return out


def checkpoint_ref(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A RunnableConfig as the Agent Server's checkpoint object (thread_id, checkpoint_ns,
    checkpoint_id, checkpoint_map), or None when it names no checkpoint."""
    conf = (config or {}).get("configurable") or {}
    if not conf.get("thread_id") or not conf.get("checkpoint_id"):
        return None
    ref = {
        "thread_id": conf["thread_id"],
        "checkpoint_ns": conf.get("checkpoint_ns") or "",
        "checkpoint_id": conf["checkpoint_id"],
    }
    if "checkpoint_map" in conf:
        ref["checkpoint_map"] = conf["checkpoint_map"]
    return ref


def _debug(chunk: Any) -> Any:
    """A debug `checkpoint` event carries `checkpoint` / `parent_checkpoint` objects, and its
    tasks a `checkpoint` instead of a subgraph's config, as the Agent Server sends them."""
    if not isinstance(chunk, dict) or chunk.get("type") != "checkpoint" or not chunk.get("payload"):
        return chunk
    payload = chunk["payload"]
    tasks = []
    for task in payload.get("tasks") or ():
        state = task.get("state")
        if isinstance(state, dict) and state.get("configurable"):
            task = {k: v for k, v in task.items() if k != "state"} | {"checkpoint": state["configurable"]}
        tasks.append(task)
    return chunk | {
        "payload": payload
        | {
            "checkpoint": checkpoint_ref(payload.get("config")),
            "parent_checkpoint": checkpoint_ref(payload.get("parent_config")),
            "tasks": tasks,
        }
    }
