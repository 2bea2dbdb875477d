"""Who is in the fleet and where everything listens. One place, read by every process."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"  # where the fleet's processes reach each other
# Where servers listen: loopback unless told otherwise (a container sets 0.0.0.0 so that the
# stack's Prometheus can scrape the orchestrator).
BIND_HOST = os.environ.get("ATALAIA_DEMO_BIND", HOST)
ORCHESTRATOR_PORT = 8000
MOCK_LLM_PORT = 8020

DEPARTMENTS = ("engineering", "operations", "research", "sales")
PRIORITIES = ("high", "normal", "low")

# Daily budget per department in USD. Normal load spends a few percent a day; the budget_burn
# fault empties one within minutes, which is what BudgetCritical is for.
DAILY_BUDGET_USD = {"engineering": 40.0, "operations": 25.0, "research": 30.0, "sales": 20.0}


@dataclass(frozen=True)
class AgentSpec:
    name: str
    port: int
    department: str
    job: str
    model: str
    provider: str
    # Shift pattern in seconds (on, off); (0, 0) means always on shift.
    shift: tuple[int, int] = (0, 0)
    concurrency: int = 4

    @property
    def url(self) -> str:
        """Where the others reach it; ATALAIA_DEMO_AGENT_URL_<NAME> overrides (one container
        per agent)."""
        return os.environ.get(f"ATALAIA_DEMO_AGENT_URL_{self.name.upper()}") or (
            f"http://{HOST}:{self.port}"
        )


AGENTS: tuple[AgentSpec, ...] = (
    AgentSpec("Helix", 8010, "engineering", "code", "gpt-4o", "openai"),
    AgentSpec("Sigma", 8011, "operations", "report", "claude-sonnet-4-5", "anthropic"),
    AgentSpec(
        "Atlas", 8012, "research", "research", "llama-3.1-8b-instant", "groq", shift=(480, 120)
    ),
    AgentSpec("Nova", 8013, "sales", "sales", "gpt-4o-mini", "openai", shift=(540, 60)),
)

# The model the orchestrator plans with.
PLANNER_MODEL = ("gpt-4o-mini", "openai")


def agent(name: str) -> AgentSpec:
    for spec in AGENTS:
        if spec.name.lower() == name.lower():
            return spec
    raise KeyError(f"unknown agent {name!r}; known: {', '.join(a.name for a in AGENTS)}")


def state_dir() -> Path:
    """Runtime files (pid/state file, heartbeat database, process logs); outside the repository."""
    default = Path(tempfile.gettempdir()) / f"atalaia-demo-{os.getuid()}"
    path = Path(os.environ.get("ATALAIA_DEMO_STATE_DIR", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def llm_base_url() -> str:
    return os.environ.get("ATALAIA_DEMO_LLM_URL", f"http://{HOST}:{MOCK_LLM_PORT}/v1")


def orchestrator_url(port: int = ORCHESTRATOR_PORT) -> str:
    """Where the others reach the orchestrator's API (the launcher, the agents' heartbeats)."""
    return os.environ.get("ATALAIA_DEMO_ORCHESTRATOR_URL") or f"http://{HOST}:{port}"


def heartbeat_db(directory: Path) -> Path:
    """The orchestrator's SQLite record of the agents' heartbeats (`HeartbeatStore`)."""
    return directory / "heartbeats.sqlite"


def hang_marker(directory: Path, agent_name: str) -> Path:
    """While this file exists the agent sends no heartbeat, across restarts (agent_hang fault)."""
    return directory / f"hang-{agent_name.lower()}"


def logs_dir() -> Path | None:
    """Where each process writes its log file; None when ATALAIA_DEMO_LOGS=stdout (containers:
    every process's JSON lines go to the container's stdout)."""
    if os.environ.get("ATALAIA_DEMO_LOGS", "").lower() == "stdout":
        return None
    path = state_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path
