"""Backups that restore: consistent, incremental, encrypted and signed copies of the database
and the blob stores, to folders and S3-compatible storage (``medops backup``; service.py)."""
