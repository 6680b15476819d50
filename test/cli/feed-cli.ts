/**
 * Runs `node bin/tsalign.js` from source for the feed, tap and topics tests, and opens
 * temporary data directories.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '..', '..');
const BIN = join(REPO_ROOT, 'bin', 'tsalign.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `tsalign ARGS`; stdin gets `input` when given, else nothing. */
export function startCli(args: string[], options: { input?: string | Buffer; env?: Record<string, string> } = {}): {
  child: ChildProcess;
  result: Promise<CliResult>;
  output: { stdout: string; stderr: string };
} {
  const env: NodeJS.ProcessEnv = { ...process.env, TSALIGN_FROM_SOURCE: '1', TSALIGN_LOG_LEVEL: 'info', ...options.env };
  delete env.TSALIGN_BROKERS;
  if (options.env?.TSALIGN_BROKERS !== undefined) env.TSALIGN_BROKERS = options.env.TSALIGN_BROKERS;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  child.stdin!.end(options.input ?? '');
  const result = new Promise<CliResult>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, ...output }));
  });
  return { child, result, output };
}

/** Runs `tsalign ARGS` to the end. */
export function runCli(args: string[], options: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

/** Resolves once `text` appears in the output stream, or rejects when the process ends first. */
export function waitForOutput(started: ReturnType<typeof startCli>, stream: 'stdout' | 'stderr', text: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const check = (): void => {
      if (started.output[stream].includes(text)) {
        started.child[stream]!.off('data', onData);
        resolvePromise();
      }
    };
    const onData = (): void => {
      setImmediate(check);
    };
    started.child[stream]!.on('data', onData);
    started.result.then(() => reject(new Error(`tsalign ended before printing ${JSON.stringify(text)}:\n${started.output.stderr}`)), reject);
    check();
  });
}

/** Returns a fresh temporary directory and its remover. */
export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Lines of stderr without pino's JSON log lines. */
export function messages(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line !== '' && !line.startsWith('{'));
}
