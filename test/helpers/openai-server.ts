import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A small OpenAI-compatible chat completions server on 127.0.0.1 for teacher tests. Each request
 * gets the next scripted behaviour from `script`, and `fallback` serves the requests after that.
 *
 * The judge behaviours read the two responses from the user message, which the openai teacher
 * writes between the lines `[Response A]`, `[Response B]` and `[End]`.
 */

/** How the server responds to one request. */
export type ServerBehaviour =
  /** A verdict from `prefer` (default: the response that contains `marker`, else "B"). */
  | { kind: 'judge' }
  /** A position-biased judge: always "A", whatever the responses. */
  | { kind: 'always-a' }
  /** A 200 with this reply text, finish reason and, when given, logprobs of the first token. */
  | { kind: 'reply'; content: string | null; finishReason?: string; topLogprobs?: Record<string, number> }
  /** A verdict from `prefer` with logprobs, where the preferred letter gets `probability`. */
  | { kind: 'judge-logprobs'; probability: number }
  /** A 200 whose body is an error object instead of a completion. */
  | { kind: 'error-in-200' }
  /** An error status with optional headers and an OpenAI-style error body. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; message?: string }
  /** Headers and the first bytes of a JSON body, then nothing until the client gives up. */
  | { kind: 'stall-body' }
  /** Nothing at all: not even the headers. */
  | { kind: 'stall-headers' }
  /** The socket is destroyed before any response (a connection reset). */
  | { kind: 'reset' };

export interface RecordedRequest {
  url: string;
  headers: IncomingMessage['headers'];
  body: ChatRequestBody;
}

export interface ChatRequestBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  temperature?: number;
  max_tokens?: number;
  logprobs?: boolean;
  top_logprobs?: number;
  [key: string]: unknown;
}

export interface OpenAiServerOptions {
  /** Behaviours for the first requests, in arrival order. */
  script?: ServerBehaviour[];
  /** Behaviour once the script is used up. */
  fallback?: ServerBehaviour;
  /** Text whose presence makes a response win under the default `prefer`. */
  marker?: string;
  /** Returns the letter of the better response; overrides the marker rule. */
  prefer?: (responseA: string, responseB: string) => 'A' | 'B';
}

export interface OpenAiServer {
  /** Base URL for the openai client, ending in `/v1`. */
  baseURL: string;
  /** Every request received so far, in arrival order. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Splits the teacher's user message into its two responses. */
export function parseResponses(content: string): { responseA: string; responseB: string } {
  const match = /\[Response A\]\n([\s\S]*)\n\[Response B\]\n([\s\S]*)\n\[End\]/.exec(content);
  if (!match) throw new Error(`test server: no [Response A]/[Response B]/[End] blocks in: ${content}`);
  return { responseA: match[1]!, responseB: match[2]! };
}

function completion(content: string | null, finishReason: string, logprobs: unknown = null): unknown {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 0,
    model: 'judge-test',
    choices: [{ index: 0, message: { role: 'assistant', content }, logprobs, finish_reason: finishReason }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
}

function firstTokenLogprobs(token: string, top: Record<string, number>): unknown {
  const topLogprobs = Object.entries(top).map(([text, logprob]) => ({ token: text, logprob, bytes: null }));
  return { content: [{ token, logprob: top[token] ?? 0, bytes: null, top_logprobs: topLogprobs }] };
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  response.end(text);
}

/** Starts the server on a free port of 127.0.0.1. */
export async function startOpenAiServer(options: OpenAiServerOptions = {}): Promise<OpenAiServer> {
  const script = [...(options.script ?? [])];
  const fallback = options.fallback ?? { kind: 'judge' };
  const marker = options.marker ?? 'GOOD';
  const prefer =
    options.prefer ?? ((responseA: string, _responseB: string) => (responseA.includes(marker) ? 'A' : 'B'));
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequestBody;
      requests.push({ url: request.url ?? '', headers: request.headers, body });
      const behaviour = script.shift() ?? fallback;
      const userMessage = body.messages.find((message) => message.role === 'user')?.content ?? '';

      switch (behaviour.kind) {
        case 'judge': {
          const { responseA, responseB } = parseResponses(userMessage);
          sendJson(response, 200, completion(prefer(responseA, responseB), 'stop'));
          return;
        }
        case 'always-a':
          sendJson(response, 200, completion('A', 'stop'));
          return;
        case 'judge-logprobs': {
          const { responseA, responseB } = parseResponses(userMessage);
          const winner = prefer(responseA, responseB);
          const loser = winner === 'A' ? 'B' : 'A';
          const top = { [winner]: Math.log(behaviour.probability), [loser]: Math.log(1 - behaviour.probability) };
          sendJson(response, 200, completion(winner, 'stop', firstTokenLogprobs(winner, top)));
          return;
        }
        case 'reply': {
          const logprobs =
            behaviour.topLogprobs === undefined
              ? null
              : firstTokenLogprobs(behaviour.content ?? '', behaviour.topLogprobs);
          sendJson(response, 200, completion(behaviour.content, behaviour.finishReason ?? 'stop', logprobs));
          return;
        }
        case 'error-in-200':
          sendJson(response, 200, { error: { message: 'model overloaded', type: 'server_error', code: null } });
          return;
        case 'status':
          sendJson(
            response,
            behaviour.status,
            { error: { message: behaviour.message ?? `scripted status ${behaviour.status}`, type: 'test_error' } },
            behaviour.headers,
          );
          return;
        case 'stall-body':
          response.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
          response.write('{"id":"chatcmpl-stall","object":"chat.completion","choices":[');
          return;
        case 'stall-headers':
          return;
        case 'reset':
          request.socket.destroy();
          return;
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // Stalled responses never end by themselves, so their sockets are destroyed.
        for (const socket of sockets) socket.destroy();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
