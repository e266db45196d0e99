"""Persistence: engine set-up, the schema's table objects and a repository of bulk operations."""
