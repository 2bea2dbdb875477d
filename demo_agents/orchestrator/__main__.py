"""python -m demo_agents.orchestrator [--port 8000] [--seed 42] [--load 20] [--no-spawn]"""

from __future__ import annotations

import argparse

import uvicorn

from demo_agents import fleet_config
from demo_agents.instrumentation import instrument
from demo_agents.orchestrator.app import create_app
from demo_agents.orchestrator.service import Orchestrator, Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the demo orchestrator and its supervisor.")
    parser.add_argument("--port", type=int, default=fleet_config.ORCHESTRATOR_PORT)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--load", type=float, default=20.0, help="tasks per minute")
    parser.add_argument(
        "--no-spawn",
        action="store_true",
        help="do not start the agents; supervise them by heartbeat only",
    )
    args = parser.parse_args(argv)
    telemetry = instrument("orchestrator")
    try:
        settings = Settings(
            seed=args.seed,
            load_per_min=args.load,
            spawn_agents=not args.no_spawn,
            # The agents it starts send their heartbeats here (elsewhere, when it is told so).
            url=fleet_config.orchestrator_url(args.port),
        )
        app = create_app(Orchestrator(settings))
        uvicorn.run(app, host=fleet_config.BIND_HOST, port=args.port, log_level="warning")
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
