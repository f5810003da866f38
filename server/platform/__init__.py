"""Platform operations: health and readiness."""
