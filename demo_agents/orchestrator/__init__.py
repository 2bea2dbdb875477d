"""The demo orchestrator: generates, plans, routes and dispatches tasks to the agents, keeps queues,
budgets, SLA deadlines and shifts, supervises the agent processes and exposes `/metrics`."""
