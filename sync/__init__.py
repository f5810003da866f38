"""The replica and its protocol: wire models, merge rules, client engine, local store.

Free of Qt and FastAPI: the desktop app and the server both build on it.
"""
