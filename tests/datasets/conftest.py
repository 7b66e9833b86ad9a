"""Fixtures of the dataset tests: one moto_server (a real S3-compatible process on the
loopback) for the whole session, with the AWS_* variables a client needs."""

from __future__ import annotations
