"""Every signal name the library emits, in one place, exactly as docs/telemetry.md catalogues them.

Helpers import from here so that a rename is a one-line change that the catalogue test notices.
"""

from __future__ import annotations

from typing import Final

# Semantic conventions this library follows (GenAI semconv v1.41.0, Development).
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"
SCOPE_NAME: Final = "atalaia"

# --- resource -------------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"

# --- GenAI attributes -----------------------------------------------------------------------
OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
TOKEN_TYPE: Final = "gen_ai.token.type"
AGENT_NAME: Final = "gen_ai.agent.name"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
TOOL_NAME: Final = "gen_ai.tool.name"
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"

# --- Atalaia attributes ---------------------------------------------------------------------
DEPARTMENT: Final = "atalaia.department"
TASK_ID: Final = "atalaia.task.id"
TASK_KIND: Final = "atalaia.task.kind"
TASK_OUTCOME: Final = "atalaia.task.outcome"
SPAN_COST: Final = "atalaia.llm.cost.usd"
RETRY_REASON: Final = "atalaia.retry.reason"
TIMEOUT_REASON: Final = "atalaia.timeout.reason"
INTEGRATION_NAME: Final = "atalaia.integration.name"
CACHE_RESULT: Final = "atalaia.cache.result"
CONVERSATION_OUTCOME: Final = "atalaia.conversation.outcome"
DB_STATE: Final = "db.client.connection.state"
DB_POOL: Final = "db.client.connection.pool.name"
CPU_MODE: Final = "cpu.mode"

# --- metrics: (name, unit) ------------------------------------------------------------------
M_RETRIES: Final = ("atalaia.retries", "{retry}")
M_TIMEOUTS: Final = ("atalaia.timeouts", "{timeout}")
M_ERRORS: Final = ("atalaia.errors", "{error}")
M_INTEGRATION_ERRORS: Final = ("atalaia.integration.errors", "{error}")
M_CACHE_REQUESTS: Final = ("atalaia.cache.requests", "{request}")
M_CONVERSATIONS: Final = ("atalaia.conversations", "{conversation}")
M_LEADS: Final = ("atalaia.leads", "{lead}")
M_HEARTBEAT: Final = ("atalaia.agent.heartbeat.timestamp", "s")
M_DB_CONNECTIONS: Final = ("db.client.connection.count", "{connection}")
M_CPU_TIME: Final = ("process.cpu.time", "s")
M_CPU_UTILIZATION: Final = ("process.cpu.utilization", "1")
M_MEMORY_USAGE: Final = ("process.memory.usage", "By")

# --- closed value sets (metric label values stay bounded) -----------------------------------
# A value outside its set is recorded as OTHER, with one warning per value, so that a typo or an
# exception message can never explode a metric's cardinality.
OTHER: Final = "other"
TASK_OUTCOMES: Final = ("success", "failure", "timeout")
RETRY_REASONS: Final = ("rate_limit", "llm_error", "timeout", "tool_error", "validation")
TIMEOUT_REASONS: Final = ("llm", "tool", "task")
ERROR_TYPES: Final = ("llm", "tool", "api", "database", "integration", "validation", "internal")
CONVERSATION_OUTCOMES: Final = ("qualified", "unqualified", "abandoned")
CACHE_RESULTS: Final = ("hit", "miss")
DB_STATES: Final = ("idle", "used")
