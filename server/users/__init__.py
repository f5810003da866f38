"""People of an organization and their roles."""
