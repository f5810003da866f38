"""Outgoing email through a transactional outbox."""
