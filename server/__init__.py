"""District Resolve server: the multi-tenant FastAPI application."""
