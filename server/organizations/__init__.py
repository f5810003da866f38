"""Organizations (tenants) and their departments."""
