"""Workflow definitions, versions, instances, automation rules and the execution engine."""
