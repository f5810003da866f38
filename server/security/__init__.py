"""An organization's security and compliance policy."""
