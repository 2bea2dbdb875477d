// The golden agent for the Vercel AI SDK (JavaScript): the same calls as tests/golden/agent.py
// makes, with the AI SDK's OpenAI (chat completions) and Anthropic providers, traced by its
// OpenTelemetry integration (@ai-sdk/otel) and exported over OTLP/HTTP to the capture collector.
// tests/golden/record.py runs it from a copy of this directory with its locked node_modules.
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { OpenTelemetry } from "@ai-sdk/otel";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { embed, generateText, registerTelemetry, streamText } from "ai";

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME }),
  spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter())], // OTEL_EXPORTER_OTLP_ENDPOINT
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);
registerTelemetry(new OpenTelemetry());

const KEY = "golden-test-key"; // the mock checks nothing; not a real key
const telemetry = { recordInputs: false, recordOutputs: false };
const common = { maxRetries: 0, maxOutputTokens: 64, telemetry, instructions: "You are a terse assistant." };
const messages = [{ role: "user", content: "How is the fleet?" }];

async function expectFailure(call) {
  try {
    await call();
  } catch (e) {
    console.error(`  expected failure: ${e.name}`);
  }
}

const openai = createOpenAI({ baseURL: process.env.GOLDEN_OPENAI_URL, apiKey: KEY });
const chat = openai.chat("gpt-4o-mini");
await generateText({ model: chat, messages, ...common });
await streamText({ model: chat, messages, ...common }).consumeStream();
await embed({ model: openai.embedding("text-embedding-3-small"), value: "fleet health", maxRetries: 0, telemetry });
for (const fail of ["429", "500"]) {
  await expectFailure(() =>
    generateText({ model: chat, messages, headers: { "x-golden-fail": fail }, ...common }),
  );
}

const anthropic = createAnthropic({ baseURL: `${process.env.GOLDEN_ANTHROPIC_URL}/v1`, apiKey: KEY });
const claude = anthropic("claude-sonnet-4-5");
await generateText({ model: claude, messages, ...common });
await streamText({ model: claude, messages, ...common }).consumeStream();
for (const fail of ["429", "500"]) {
  await expectFailure(() =>
    generateText({ model: claude, messages, headers: { "x-golden-fail": fail }, ...common }),
  );
}

await provider.shutdown();
// Each generateText / streamText is an invoke_agent span of its own (the AI SDK's agent loop),
// named after the model, with no agent name: 8 tasks, the 4 failed calls' failed.
console.log(JSON.stringify({ tasks: 8, failed_tasks: 4, tools: 0, agent: process.env.OTEL_SERVICE_NAME }));
