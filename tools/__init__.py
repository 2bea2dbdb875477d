"""Build-time helpers: pinning and building the upstream servers Atalaia is tested against."""
