"""The Atalaia demo fleet: a mock LLM, an orchestrator with a self-healing supervisor, and four
agents (Helix, Sigma, Atlas, Nova) instrumented with `atalaia`. `python -m demo_agents --help`."""
