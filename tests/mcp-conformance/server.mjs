// Reference MCP server for the conformance harness (run.py).
//
// Built on the official TypeScript SDK (@modelcontextprotocol/sdk), served
// over Streamable HTTP at /mcp, with one SDK `Server` + transport per session.
// It offers every tool, prompt and resource that the server scenarios of
// @modelcontextprotocol/conformance ask for (see `conformance list --server`),
// so the suite can be run against it directly and through the Agora gateway.
//
// The low-level `Server` class is used instead of `McpServer` so that tool
// input schemas go out verbatim: `json-schema-2020-12` checks that `$schema`,
// `$defs` and `additionalProperties` survive, which McpServer's zod->JSON
// Schema conversion would rewrite.
//
// Usage: node server.mjs [PORT]   (or MCP_PORT=PORT; default 3000)
//        listens on 127.0.0.1 only; prints "listening on http://127.0.0.1:PORT/mcp".

import { randomUUID } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  ElicitResultSchema,
  CreateMessageResultSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ErrorCode,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  isInitializeRequest,
} from '@modelcontextprotocol/sdk/types.js';

const HOST = '127.0.0.1';
const PORT = Number(process.argv[2] ?? process.env.MCP_PORT ?? 3000);
const QUIET = process.env.MCP_QUIET === '1';
const log = (...a) => {
  if (!QUIET) console.error('[server]', ...a);
};

// ---------------------------------------------------------------- fixtures

// 1x1 red pixel PNG.
const RED_PIXEL_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

// A tiny valid WAV file: PCM, mono, 8 kHz, 8-bit, 8 samples of silence.
function tinyWav() {
  const samples = 8;
  const b = Buffer.alloc(44 + samples);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + samples, 4);
  b.write('WAVE', 8);
  b.write('fmt ', 12);
  b.writeUInt32LE(16, 16); // fmt chunk size
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(8000, 24); // sample rate
  b.writeUInt32LE(8000, 28); // byte rate
  b.writeUInt16LE(1, 32); // block align
  b.writeUInt16LE(8, 34); // bits per sample
  b.write('data', 36);
  b.writeUInt32LE(samples, 40);
  b.fill(0x80, 44); // 8-bit PCM silence
  return b.toString('base64');
}
const TINY_WAV = tinyWav();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ type: 'text', text: t });
const noArgs = { type: 'object', properties: {} };

// ---------------------------------------------------------------- event store
// In-memory EventStore so POST/GET SSE streams are resumable (priming events,
// Last-Event-ID replay). Event ids are "<streamId>::<seq>", seq is global.

class MemoryEventStore {
  constructor(maxEvents = 10_000) {
    this.events = []; // {id, streamId, message}
    this.byId = new Map();
    this.seq = 0;
    this.maxEvents = maxEvents;
  }
  async storeEvent(streamId, message) {
    const id = `${streamId}::${++this.seq}`;
    const ev = { id, streamId, message, seq: this.seq };
    this.events.push(ev);
    this.byId.set(id, ev);
    while (this.events.length > this.maxEvents) this.byId.delete(this.events.shift().id);
    return id;
  }
  async getStreamIdForEventId(eventId) {
    return this.byId.get(eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const last = this.byId.get(lastEventId);
    if (!last) return '';
    for (const ev of this.events) {
      if (ev.streamId === last.streamId && ev.seq > last.seq) await send(ev.id, ev.message);
    }
    return last.streamId;
  }
}

// ---------------------------------------------------------------- shared state

const sessions = new Map(); // sessionId -> {transport, server, logLevel, subscriptions:Set}
const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
const watched = { version: 1 };

// ---------------------------------------------------------------- tools

const TOOLS = [
  {
    name: 'test_simple_text',
    description: 'Returns a simple text content block',
    inputSchema: noArgs,
    run: async () => ({ content: [text('This is a simple text response for testing.')] }),
  },
  {
    name: 'test_image_content',
    description: 'Returns an image content block (1x1 red PNG)',
    inputSchema: noArgs,
    run: async () => ({ content: [{ type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' }] }),
  },
  {
    name: 'test_audio_content',
    description: 'Returns an audio content block (tiny WAV)',
    inputSchema: noArgs,
    run: async () => ({ content: [{ type: 'audio', data: TINY_WAV, mimeType: 'audio/wav' }] }),
  },
  {
    name: 'test_embedded_resource',
    description: 'Returns an embedded text resource',
    inputSchema: noArgs,
    run: async () => ({
      content: [
        {
          type: 'resource',
          resource: {
            uri: 'test://embedded-resource',
            mimeType: 'text/plain',
            text: 'This is an embedded resource content.',
          },
        },
      ],
    }),
  },
  {
    name: 'test_multiple_content_types',
    description: 'Returns text, image and resource content blocks together',
    inputSchema: noArgs,
    run: async () => ({
      content: [
        text('Multiple content types test:'),
        { type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' },
        {
          type: 'resource',
          resource: {
            uri: 'test://mixed-content-resource',
            mimeType: 'application/json',
            text: JSON.stringify({ test: 'data', value: 123 }),
          },
        },
      ],
    }),
  },
  {
    name: 'test_tool_with_logging',
    description: 'Sends three info log notifications while it runs',
    inputSchema: noArgs,
    run: async (_args, ctx) => {
      await ctx.log('info', 'Tool execution started');
      await sleep(50);
      await ctx.log('info', 'Tool processing data');
      await sleep(50);
      await ctx.log('info', 'Tool execution completed');
      return { content: [text('Tool with logging executed successfully')] };
    },
  },
  {
    name: 'test_tool_with_progress',
    description: 'Reports progress 0/100, 50/100, 100/100 when given a progress token',
    inputSchema: noArgs,
    run: async (_args, ctx) => {
      for (const progress of [0, 50, 100]) {
        await ctx.progress(progress, 100, `Completed step ${progress}`);
        if (progress < 100) await sleep(50);
      }
      return { content: [text(`Progress tool completed (token: ${ctx.progressToken ?? 'none'})`)] };
    },
  },
  {
    name: 'test_error_handling',
    description: 'Always fails with isError: true',
    inputSchema: noArgs,
    run: async () => ({
      isError: true,
      content: [text('This tool intentionally returns an error for testing')],
    }),
  },
  {
    name: 'test_sampling',
    description: 'Asks the client to sample an LLM completion (sampling/createMessage)',
    inputSchema: {
      type: 'object',
      properties: { prompt: { type: 'string', description: 'The prompt to send to the LLM' } },
      required: ['prompt'],
    },
    run: async (args, ctx) => {
      if (!ctx.clientCaps?.sampling) return errorResult('Client does not support sampling');
      const r = await ctx.request(
        {
          method: 'sampling/createMessage',
          params: {
            messages: [{ role: 'user', content: text(String(args.prompt ?? '')) }],
            maxTokens: 100,
          },
        },
        CreateMessageResultSchema,
      );
      const reply = r.content?.type === 'text' ? r.content.text : JSON.stringify(r.content);
      return { content: [text(`LLM response: ${reply}`)] };
    },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the client for user input (elicitation/create)',
    inputSchema: {
      type: 'object',
      properties: { message: { type: 'string', description: 'The message to show the user' } },
      required: ['message'],
    },
    run: async (args, ctx) =>
      elicit(ctx, String(args.message ?? ''), {
        type: 'object',
        properties: {
          username: { type: 'string', description: "User's response" },
          email: { type: 'string', description: "User's email address" },
        },
        required: ['username', 'email'],
      }, 'User response'),
  },
  {
    name: 'test_elicitation_sep1034_defaults',
    description: 'Elicitation whose schema carries defaults for every primitive type (SEP-1034)',
    inputSchema: noArgs,
    run: async (_args, ctx) =>
      elicit(ctx, 'Please review and update the form fields with defaults', {
        type: 'object',
        properties: {
          name: { type: 'string', description: 'User name', default: 'John Doe' },
          age: { type: 'integer', description: 'User age', default: 30 },
          score: { type: 'number', description: 'User score', default: 95.5 },
          status: {
            type: 'string',
            description: 'User status',
            enum: ['active', 'inactive', 'pending'],
            default: 'active',
          },
          verified: { type: 'boolean', description: 'Verification status', default: true },
        },
        required: [],
      }, 'Elicitation completed'),
  },
  {
    name: 'test_elicitation_sep1330_enums',
    description: 'Elicitation using all five enum schema variants (SEP-1330)',
    inputSchema: noArgs,
    run: async (_args, ctx) =>
      elicit(ctx, 'Please choose from the enum fields', {
        type: 'object',
        properties: {
          untitledSingle: {
            type: 'string',
            description: 'Untitled single-select',
            enum: ['option1', 'option2', 'option3'],
          },
          titledSingle: {
            type: 'string',
            description: 'Titled single-select',
            oneOf: [
              { const: 'value1', title: 'First Option' },
              { const: 'value2', title: 'Second Option' },
              { const: 'value3', title: 'Third Option' },
            ],
          },
          legacyEnum: {
            type: 'string',
            description: 'Legacy titled enum (enumNames, deprecated)',
            enum: ['opt1', 'opt2', 'opt3'],
            enumNames: ['Option One', 'Option Two', 'Option Three'],
          },
          untitledMulti: {
            type: 'array',
            description: 'Untitled multi-select',
            items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
          },
          titledMulti: {
            type: 'array',
            description: 'Titled multi-select',
            items: {
              anyOf: [
                { const: 'value1', title: 'First Choice' },
                { const: 'value2', title: 'Second Choice' },
                { const: 'value3', title: 'Third Choice' },
              ],
            },
          },
        },
        required: [],
      }, 'Elicitation completed'),
  },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: {
        address: {
          type: 'object',
          properties: { street: { type: 'string' }, city: { type: 'string' } },
        },
      },
      properties: {
        name: { type: 'string' },
        address: { $ref: '#/$defs/address' },
      },
      additionalProperties: false,
    },
    run: async (args) => ({ content: [text(`JSON Schema 2020-12 tool called with ${JSON.stringify(args)}`)] }),
  },
  {
    name: 'test_reconnection',
    description:
      'Closes its SSE stream mid-call (SEP-1699); the result is replayed when the client reconnects with Last-Event-ID',
    inputSchema: noArgs,
    run: async (_args, ctx) => {
      // Give the client an event id to resume from, then drop the stream.
      await ctx.log('info', 'test_reconnection: closing the SSE stream before the result', true);
      ctx.closeStream();
      await sleep(100);
      return { content: [text('Reconnection test completed')] };
    },
  },
  {
    name: 'test_trigger_resource_update',
    description: 'Bumps test://watched-resource and notifies subscribed sessions (notifications/resources/updated)',
    inputSchema: noArgs,
    run: async () => {
      watched.version += 1;
      let notified = 0;
      for (const s of sessions.values()) {
        if (s.subscriptions.has('test://watched-resource')) {
          await s.server.sendResourceUpdated({ uri: 'test://watched-resource' }).catch(() => {});
          notified += 1;
        }
      }
      return { content: [text(`watched resource now at version ${watched.version}; notified ${notified} session(s)`)] };
    },
  },
];
const TOOL_BY_NAME = new Map(TOOLS.map((t) => [t.name, t]));

function errorResult(msg) {
  return { isError: true, content: [text(msg)] };
}

async function elicit(ctx, message, requestedSchema, prefix) {
  if (!ctx.clientCaps?.elicitation) return errorResult('Client does not support elicitation');
  const r = await ctx.request(
    { method: 'elicitation/create', params: { message, requestedSchema } },
    ElicitResultSchema,
  );
  return { content: [text(`${prefix}: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
}

// ---------------------------------------------------------------- prompts

const PROMPTS = [
  {
    name: 'test_simple_prompt',
    description: 'A prompt without arguments',
    get: () => ({ messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }] }),
  },
  {
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two required arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
    get: (a) => ({
      messages: [
        { role: 'user', content: text(`Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'`) },
      ],
    }),
  },
  {
    name: 'test_prompt_with_embedded_resource',
    description: 'A prompt embedding a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
    get: (a) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'resource',
            resource: {
              uri: a.resourceUri,
              mimeType: 'text/plain',
              text: 'Embedded resource content for testing.',
            },
          },
        },
        { role: 'user', content: text('Please process the embedded resource above.') },
      ],
    }),
  },
  {
    name: 'test_prompt_with_image',
    description: 'A prompt with image content',
    get: () => ({
      messages: [
        { role: 'user', content: { type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' } },
        { role: 'user', content: text('Please analyze the image above.') },
      ],
    }),
  },
];
const PROMPT_BY_NAME = new Map(PROMPTS.map((p) => [p.name, p]));

// Completion candidates per (prompt, argument) and per template variable.
const PROMPT_COMPLETIONS = {
  test_prompt_with_arguments: {
    arg1: ['paris', 'park', 'party', 'test', 'testing', 'testValue1'],
    arg2: ['world', 'wonder', 'testValue2'],
  },
  test_prompt_with_embedded_resource: {
    resourceUri: ['test://static-text', 'test://static-binary', 'test://watched-resource', 'test://example-resource'],
  },
};
const TEMPLATE_COMPLETIONS = { 'test://template/{id}/data': { id: ['1', '12', '123', '42'] } };

// ---------------------------------------------------------------- resources

const RESOURCES = [
  {
    uri: 'test://static-text',
    name: 'static-text',
    description: 'A static text resource',
    mimeType: 'text/plain',
    read: () => ({ text: 'This is the content of the static text resource.' }),
  },
  {
    uri: 'test://static-binary',
    name: 'static-binary',
    description: 'A static binary resource (PNG)',
    mimeType: 'image/png',
    read: () => ({ blob: RED_PIXEL_PNG }),
  },
  {
    uri: 'test://watched-resource',
    name: 'watched-resource',
    description: 'A resource that can be subscribed to (see test_trigger_resource_update)',
    mimeType: 'text/plain',
    read: () => ({ text: `Watched resource, version ${watched.version}` }),
  },
];
const RESOURCE_BY_URI = new Map(RESOURCES.map((r) => [r.uri, r]));
const TEMPLATE = {
  uriTemplate: 'test://template/{id}/data',
  name: 'template-data',
  description: 'A resource template with an id parameter',
  mimeType: 'application/json',
};
const TEMPLATE_RE = /^test:\/\/template\/([^/]+)\/data$/;

// ---------------------------------------------------------------- server factory

function createServer(state) {
  const server = new Server(
    { name: 'agora-conformance-server', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        logging: {},
        completions: {},
      },
      instructions: 'Reference server for the MCP conformance suite (Agora tests).',
    },
  );

  server.setRequestHandler(SetLevelRequestSchema, async (req) => {
    state.logLevel = req.params.level;
    return {};
  });

  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: TOOLS.map(({ name, description, inputSchema }) => ({ name, description, inputSchema })),
  }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const tool = TOOL_BY_NAME.get(req.params.name);
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${req.params.name}`);
    const progressToken = req.params._meta?.progressToken;
    const ctx = {
      progressToken,
      clientCaps: server.getClientCapabilities(),
      // Notifications carry relatedRequestId (via extra.sendNotification), so
      // they travel on this call's POST SSE stream, not the standalone GET one.
      log: async (level, data, force = false) => {
        if (!force && LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(state.logLevel ?? 'debug')) return;
        await extra.sendNotification({
          method: 'notifications/message',
          params: { level, logger: 'conformance-server', data },
        });
      },
      progress: async (progress, total, message) => {
        if (progressToken === undefined) return;
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress, total, message },
        });
      },
      request: (r, schema) => extra.sendRequest(r, schema),
      closeStream: () => {
        // SDK-provided when the client negotiated >= 2025-11-25 on this request;
        // the conformance scenario posts with an older MCP-Protocol-Version
        // header, so fall back to the transport (the event store still lets the
        // client resume from the log event above).
        if (extra.closeSSEStream) extra.closeSSEStream();
        else state.transport.closeSSEStream(extra.requestId);
      },
    };
    return tool.run(req.params.arguments ?? {}, ctx);
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({
    prompts: PROMPTS.map(({ name, description, arguments: args }) => ({ name, description, arguments: args })),
  }));

  server.setRequestHandler(GetPromptRequestSchema, async (req) => {
    const p = PROMPT_BY_NAME.get(req.params.name);
    if (!p) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${req.params.name}`);
    const args = req.params.arguments ?? {};
    for (const a of p.arguments ?? []) {
      if (a.required && args[a.name] === undefined)
        throw new McpError(ErrorCode.InvalidParams, `Missing required argument: ${a.name}`);
    }
    return { description: p.description, ...p.get(args) };
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: RESOURCES.map(({ uri, name, description, mimeType }) => ({ uri, name, description, mimeType })),
  }));

  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: [TEMPLATE] }));

  server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
    const { uri } = req.params;
    const r = RESOURCE_BY_URI.get(uri);
    if (r) return { contents: [{ uri, mimeType: r.mimeType, ...r.read() }] };
    const m = TEMPLATE_RE.exec(uri);
    if (m) {
      const id = decodeURIComponent(m[1]);
      return {
        contents: [
          {
            uri,
            mimeType: 'application/json',
            text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
          },
        ],
      };
    }
    throw new McpError(-32002, `Resource not found: ${uri}`);
  });

  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    state.subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    state.subscriptions.delete(req.params.uri);
    return {};
  });

  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const { ref, argument } = req.params;
    let pool = [];
    if (ref.type === 'ref/prompt') pool = PROMPT_COMPLETIONS[ref.name]?.[argument.name] ?? [];
    else if (ref.type === 'ref/resource') pool = TEMPLATE_COMPLETIONS[ref.uri]?.[argument.name] ?? [];
    const values = pool.filter((v) => v.startsWith(argument.value ?? ''));
    return { completion: { values: values.slice(0, 100), total: values.length, hasMore: values.length > 100 } };
  });

  return server;
}

// ---------------------------------------------------------------- HTTP

// createMcpExpressApp binds Host-header validation for localhost (DNS rebinding
// protection, checked by the dns-rebinding-protection scenario) and JSON parsing.
const app = createMcpExpressApp({ host: HOST });
const eventStore = new MemoryEventStore();

app.get('/healthz', (_req, res) => res.json({ ok: true, sessions: sessions.size }));

app.all('/mcp', async (req, res) => {
  try {
    const sid = req.headers['mcp-session-id'];
    if (sid) {
      const s = sessions.get(sid);
      if (!s) {
        res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
        return;
      }
      await s.transport.handleRequest(req, res, req.body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
      res
        .status(400)
        .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: no valid session ID' }, id: null });
      return;
    }
    const state = { transport: null, server: null, logLevel: undefined, subscriptions: new Set() };
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore,
      retryInterval: 500,
      onsessioninitialized: (id) => {
        sessions.set(id, state);
        log(`session ${id} initialized (${sessions.size} open)`);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const server = createServer(state);
    state.transport = transport;
    state.server = server;
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (err) {
    log('error handling request:', err);
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
    }
  }
});

const httpServer = app.listen(PORT, HOST, () => {
  const { port } = httpServer.address();
  console.log(`listening on http://${HOST}:${port}/mcp`);
});

function shutdown() {
  for (const s of sessions.values()) s.transport.close().catch(() => {});
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
