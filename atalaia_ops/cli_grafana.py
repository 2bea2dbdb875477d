"""`atalaia grafana push`: Atalaia's datasources, folder and dashboards into an existing Grafana."""

from __future__ import annotations

import argparse
import os
import re
import sys

from atalaia_ops.dashboards import FOLDER, as_json
from atalaia_ops.dashboards.datasources import definitions
from atalaia_ops.dashboards.grafana_api import Grafana, GrafanaError, push


def folder_uid(title: str) -> str:
    uid = re.sub(r"[^a-z0-9-]+", "-", title.lower()).strip("-")
    if not uid:
        raise GrafanaError(f"--folder {title!r} has no letters or digits to make a uid of", 2)
    return uid[:40]


def _push(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("GRAFANA_TOKEN", "")
    try:
        for flag in ("prometheus_url", "loki_url", "tempo_url", "alertmanager_url"):
            value = getattr(args, flag)
            if value and not value.startswith(("http://", "https://")):
                name = "--" + flag.replace("_", "-")
                raise GrafanaError(f"{name} must start with http:// or https://, got {value!r}", 2)
        grafana = Grafana(args.grafana_url, token)
        try:
            report = push(
                grafana,
                definitions(
                    args.prometheus_url, args.loki_url, args.tempo_url, args.alertmanager_url
                ),
                (folder_uid(args.folder), args.folder),
                list(as_json().values()),
            )
        finally:
            grafana.close()
    except GrafanaError as e:
        print(f"atalaia grafana push: {e}", file=sys.stderr)
        return e.exit_code
    print(f"{report.changed} changed, {len(report.actions) - report.changed} unchanged")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    grafana = sub.add_parser("grafana", help="work with an existing Grafana")
    gsub = grafana.add_subparsers(dest="grafana_command", metavar="COMMAND", required=True)
    p = gsub.add_parser(
        "push",
        help="create or update Atalaia's datasources, folder and dashboards",
        description="Create or update Atalaia's datasources (fixed uids prometheus, loki, tempo, "
        "alertmanager, cross-linked), its folder and dashboards through Grafana's HTTP API. "
        "Safe to run again: unchanged objects are left alone, changed ones overwritten.",
    )
    p.add_argument("--grafana-url", required=True, help="e.g. http://localhost:3000")
    p.add_argument(
        "--token",
        help="service account token with the Admin role (default: $GRAFANA_TOKEN)",
    )
    p.add_argument("--prometheus-url", required=True, help="as Grafana's server reaches it")
    p.add_argument("--loki-url", required=True)
    p.add_argument("--tempo-url", required=True)
    p.add_argument("--alertmanager-url", help="optional: adds the Alertmanager datasource")
    p.add_argument("--folder", default=FOLDER, help=f"folder title (default {FOLDER})")
    p.set_defaults(func=_push)
