"""The LangGraph Agent Server API (what `langgraph-sdk`, `useStream`, Agent Chat UI and LangGraph
Studio speak) at the root of the service, over the run engine, with the service's auth: one router
per resource. README, "Agent Server API", lists what is served and what is not."""

from api.agent import assistants, meta, runs, threads

# meta last: its not-served paths must not shadow served ones.
ROUTERS = (assistants.router, threads.router, runs.router, meta.router)

__all__ = ["ROUTERS"]
