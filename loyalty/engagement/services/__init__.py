"""Writes of this app: each function one transaction, audited where staff act."""
