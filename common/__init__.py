"""Domain vocabulary shared by the server, the sync layer and the desktop app."""

__version__ = "0.1.0"
