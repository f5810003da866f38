"""Cross-cutting machinery every domain package uses: config, database, API conventions."""
