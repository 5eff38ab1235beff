"""The LangGraph Agent Server API, served by this service for LangGraph's own clients."""
