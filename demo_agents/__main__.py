"""The demo fleet's command line.

python -m demo_agents run [--load N] [--seed S] [--foreground]
python -m demo_agents stop
python -m demo_agents status
python -m demo_agents fault NAME [--agent A]
python -m demo_agents fault-clear [NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from demo_agents import fleet_config, launcher
from demo_agents.orchestrator.faults import FAULTS


def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    url = f"{fleet_config.orchestrator_url()}{path}"
    try:
        response = httpx.request(method, url, timeout=15, **kwargs)
    except httpx.HTTPError as exc:
        raise SystemExit(
            f"the orchestrator at {url} is not answering ({exc!r}): is the fleet up?"
        ) from None
    if response.status_code >= 400:
        raise SystemExit(f"{method} {path}: HTTP {response.status_code}: {response.text}")
    return dict(response.json())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_agents", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the fleet (returns once it is healthy)")
    run.add_argument("--load", type=float, default=20.0, help="tasks per minute (default 20)")
    run.add_argument("--seed", type=int, default=42, help="seed for tasks and the mock LLM")
    run.add_argument(
        "--foreground", action="store_true", help="stay attached; stop the fleet on SIGTERM"
    )
    sub.add_parser("stop", help="stop every fleet process")
    sub.add_parser("status", help="print the orchestrator's summary")
    fault = sub.add_parser("fault", help="switch a fault on")
    fault.add_argument("name", choices=sorted(FAULTS))
    fault.add_argument("--agent", default=None, help="scope it to one agent")
    clear = sub.add_parser("fault-clear", help="switch every fault (or one) off")
    clear.add_argument("name", nargs="?", choices=sorted(FAULTS))
    args = parser.parse_args(argv)

    if args.command == "run":
        if args.load < 0:
            parser.error("--load must be >= 0")
        try:
            state = launcher.run(launcher.Options(load=args.load, seed=args.seed))
        except launcher.AlreadyRunning as exc:
            print(exc)  # `make demo` twice is not an error
            return 0
        except launcher.FleetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"fleet up: load {args.load} tasks/min, seed {args.seed}")
        print(f"  orchestrator  {state['urls']['orchestrator']}  (/metrics, /metrics/summary)")
        print(f"  mock LLM      {state['urls']['mock_llm']}/v1")
        for agent in fleet_config.AGENTS:
            print(f"  {agent.name:<13} {agent.url}  ({agent.job}, {agent.model})")
        print(f"  logs          {state['logs']}")
        if args.foreground:
            launcher.wait_foreground()
        return 0
    if args.command == "stop":
        stopped = launcher.stop()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if args.command == "status":
        print(json.dumps(call("GET", "/metrics/summary"), indent=2))
        return 0
    if args.command == "fault":
        params = {"agent": args.agent} if args.agent else {}
        print(json.dumps(call("POST", f"/faults/{args.name}", params=params), indent=2))
        return 0
    path = f"/faults/{args.name}" if args.name else "/faults"
    print(json.dumps(call("DELETE", path), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
