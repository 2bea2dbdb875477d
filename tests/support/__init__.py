"""Helpers the tests share (ports, an OTLP receiver)."""
