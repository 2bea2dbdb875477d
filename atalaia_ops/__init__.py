"""Atalaia's operator tools: the `atalaia` command (explain, slo, report, prices, grafana), the
Prometheus and Tempo query clients, the SLO, cost-rule and dashboard generators and the alert sink.

Installed with ``pip install 'atalaia[ops]'``. Nothing here loads the agent library's
OpenTelemetry set-up, and the agent library never imports this package.
"""
