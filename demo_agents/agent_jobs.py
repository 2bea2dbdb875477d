"""What each demo agent does with a task. Every job plans (cached), uses its tools, asks its model
for the work itself (longer for more items, so a smaller chunk really is faster) and validates."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

import atalaia
from demo_agents import agent_tools as tools
from demo_agents.agent_llm import LLM
from demo_agents.protocol import TaskRequest

log = logging.getLogger("demo_agents.agent.jobs")

TOPICS = (
    "billing",
    "onboarding",
    "latency",
    "pricing",
    "churn",
    "security",
    "invoices",
    "search",
    "mobile",
    "reporting",
)
TOKENS_PER_ITEM = 25
VALIDATION_ATTEMPTS = 8
# budget_burn: a runaway context (about 100k tokens) sent to a premium model on extra calls,
# about $0.9 a task: a department's daily budget goes in minutes.
BURN_CONTEXT = "Appendix: full ticket history, repeated verbatim for context. " * 6400
BURN_CALLS = 3
BURN_MODEL = ("claude-sonnet-4-5", "anthropic")


@dataclass
class JobContext:
    agent: str
    llm: LLM
    rng: random.Random
    cache: tools.ResultCache
    http: httpx.AsyncClient
    helix_url: str
    pool: tools.ConnectionPool | None
    cost_usd: float = 0.0

    async def ask(self, prompt: str, max_tokens: int, model: tuple[str, str] | None = None) -> str:
        system = f"You are {self.agent}, an agent of the Atalaia demo fleet."
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        name, provider = model or (None, None)
        answer = await self.llm.chat(messages, max_tokens=max_tokens, model=name, provider=provider)
        self.cost_usd += answer.cost_usd
        return answer.content


async def with_tool_retry(
    call: Callable[[], Awaitable[object]], attempts: int = 2, reason: str = "tool_error"
) -> object:
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except tools.ToolError as exc:
            atalaia.record_error(exc.error_type)
            if attempt == attempts:
                raise
        atalaia.record_retry(reason)
    raise AssertionError("unreachable")


async def code(ctx: JobContext, task: TaskRequest, topic: str) -> None:
    size = task.end - task.start
    await with_tool_retry(lambda: tools.run_tests(ctx.rng, size))
    await ctx.ask(f"Write the change for {topic}, {size} items.", TOKENS_PER_ITEM * size)


async def report(ctx: JobContext, task: TaskRequest, topic: str) -> None:
    size = task.end - task.start
    for part in ("baseline", "current", "forecast"):
        await tools.helix_lookup(ctx.http, ctx.helix_url, f"{topic}:{part}")
    if ctx.pool is not None:
        pool, db_down = ctx.pool, "db_down" in task.faults
        await with_tool_retry(lambda: tools.query_reports(pool, topic, size, db_down))
    await ctx.ask(f"Summarise the {topic} report over {size} rows.", TOKENS_PER_ITEM * size)


async def research(ctx: JobContext, task: TaskRequest, topic: str) -> None:
    size = task.end - task.start
    sources: list[str] = []
    for query in (topic, f"{topic} {ctx.rng.choice(TOPICS)}"):
        sources += await tools.web_search(ctx.cache, ctx.rng, query)
    await ctx.ask(
        f"Synthesise {size} findings on {topic} from {len(sources)} sources.",
        TOKENS_PER_ITEM * size,
    )


async def sales(ctx: JobContext, task: TaskRequest, topic: str) -> None:
    conversation = task.conversation_id or task.task_id
    await ctx.ask(f"Reply to the prospect asking about {topic}.", TOKENS_PER_ITEM * 4)
    roll = ctx.rng.random()
    outcome = "qualified" if roll < 0.4 else "unqualified" if roll < 0.8 else "abandoned"
    if outcome == "qualified":
        try:
            crm_down = "crm_down" in task.faults
            await with_tool_retry(lambda: tools.crm_create_lead(ctx.rng, conversation, crm_down))
            atalaia.record_lead()
        except tools.IntegrationError:
            log.error(
                "lead for conversation %s lost: CRM unavailable",
                conversation,
                extra={"error.type": "integration"},
            )
    atalaia.record_conversation(outcome)
    log.info("conversation %s ended %s", conversation, outcome)


JOBS: dict[str, Callable[[JobContext, TaskRequest, str], Awaitable[None]]] = {
    "code": code,
    "report": report,
    "research": research,
    "sales": sales,
}


async def run(ctx: JobContext, job: str, task: TaskRequest) -> list[str]:
    """The job for `task`; returns the items it produced (merged by the orchestrator)."""
    topic = ctx.rng.choice(TOPICS)
    plan_key = f"plan:{task.kind}:{topic}"
    if ctx.cache.get(plan_key) is None:
        ctx.cache.put(plan_key, await ctx.ask(f"Plan a {task.kind} task on {topic}.", 40))
    await JOBS[job](ctx, task, topic)
    if "budget_burn" in task.faults:
        for i in range(BURN_CALLS):
            await ctx.ask(f"Re-check everything ({i}).\n{BURN_CONTEXT}", 400, BURN_MODEL)
    fail_validation = "retry_loop" in task.faults
    await with_tool_retry(
        lambda: tools.validate_output(fail_validation), VALIDATION_ATTEMPTS, "validation"
    )
    return [f"{task.task_id}:{i}" for i in range(task.start, task.end)]
