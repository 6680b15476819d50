/**
 * A throwaway single-node Apache Kafka broker (KRaft, broker and controller in one JVM) for
 * development and tests.
 *
 * Maven resolves `org.apache.kafka:kafka_2.13:3.9.1` from `pom.xml` beside this file, the
 * storage is formatted with `kafka.tools.StorageTool`, and `kafka.Kafka` runs with a generated
 * `server.properties`: loopback listeners on free ports, internal topics with replication
 * factor 1 and topic auto-creation off, so tsalign must create its topics explicitly just as it
 * must on a real cluster. Everything lives under one state directory (default `.kafka/` in the
 * repository): `broker.json` (address and pid), `server.properties`, `data/` and `logs/server.log`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';

const SCRIPT_DIR = __dirname;
export const REPO_ROOT = path.resolve(SCRIPT_DIR, '..', '..');
export const DEFAULT_STATE_DIR = path.join(REPO_ROOT, '.kafka');

/** Contents of `broker.json` in the state directory. */
export interface BrokerInfo {
  /** Bootstrap address, `127.0.0.1:PORT`. */
  brokers: string;
  pid: number;
  port: number;
  controllerPort: number;
  stateDir: string;
  logFile: string;
  startedAt: string;
}

export interface StartBrokerOptions {
  /** Directory for broker.json, server.properties, data and logs. Default `.kafka/` in the repo. */
  stateDir?: string;
  /** How long to wait for Maven, storage formatting and the first metadata response, in ms. */
  timeoutMs?: number;
  /** Receives progress lines (which step runs now). */
  progress?: (line: string) => void;
}

/** Why a broker could not be started: a missing tool, a failed step or a timeout. */
export class BrokerStartError extends Error {
  override readonly name = 'BrokerStartError';
}

const DEFAULT_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * Starts a broker in `stateDir` unless one recorded there is still running, and returns its
 * address. The JVM runs detached, so it outlives the calling process until `stopBroker`.
 */
export async function startBroker(options: StartBrokerOptions = {}): Promise<BrokerInfo & { reused: boolean }> {
  const stateDir = path.resolve(options.stateDir ?? DEFAULT_STATE_DIR);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const progress = options.progress ?? (() => {});
  const deadline = Date.now() + timeoutMs;

  const existing = readBrokerInfo(stateDir);
  if (existing && isBrokerProcess(existing.pid, stateDir)) {
    await waitForMetadata(existing.brokers, deadline, existing.pid, existing.logFile);
    return { ...existing, reused: true };
  }

  requireTool('java', ['-version'], 'Install a Java runtime (17 or newer) to run the test broker.');
  requireTool('mvn', ['-v'], 'Install Apache Maven to resolve the Kafka jars.');

  const dataDir = path.join(stateDir, 'data');
  const logDir = path.join(stateDir, 'logs');
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  fs.mkdirSync(logDir, { recursive: true });

  progress('resolving org.apache.kafka:kafka_2.13:3.9.1 with Maven');
  const classpath = resolveClasspath(stateDir, deadline);

  const port = await freeLoopbackPort();
  const controllerPort = await freeLoopbackPort([port]);
  const propertiesFile = path.join(stateDir, 'server.properties');
  fs.writeFileSync(propertiesFile, serverProperties({ port, controllerPort, dataDir }));

  const jvmArgs = [
    '-Xms256m',
    '-Xmx1g',
    '-XX:+UseG1GC',
    '-Djava.awt.headless=true',
    `-Dkafka.logs.dir=${logDir}`,
    `-Dlog4j.configuration=file:${path.join(SCRIPT_DIR, 'log4j.properties')}`,
    '-cp',
    classpath,
  ];

  progress('formatting KRaft storage');
  const format = spawnSync(
    'java',
    [...jvmArgs, 'kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', propertiesFile],
    { encoding: 'utf8', timeout: Math.max(1, deadline - Date.now()) },
  );
  if (format.status !== 0) {
    throw new BrokerStartError(
      `Formatting Kafka storage in ${dataDir} failed (exit ${format.status ?? format.signal}): ` +
        `${(format.stderr || format.stdout || format.error?.message || '').trim().slice(-2000)}`,
    );
  }

  progress(`starting kafka.Kafka on 127.0.0.1:${port}`);
  const stdoutFile = path.join(logDir, 'stdout.log');
  const out = fs.openSync(stdoutFile, 'a');
  const child = spawn('java', [...jvmArgs, 'kafka.Kafka', propertiesFile], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  child.unref();
  if (child.pid === undefined) {
    throw new BrokerStartError('Starting java for kafka.Kafka failed: the process got no pid.');
  }

  const info: BrokerInfo = {
    brokers: `127.0.0.1:${port}`,
    pid: child.pid,
    port,
    controllerPort,
    stateDir,
    logFile: path.join(logDir, 'server.log'),
    startedAt: new Date().toISOString(),
  };
  writeBrokerInfo(stateDir, info);

  try {
    await waitForMetadata(info.brokers, deadline, info.pid, stdoutFile);
  } catch (error) {
    await stopBroker({ stateDir });
    throw error;
  }
  return { ...info, reused: false };
}

/**
 * Stops the broker recorded in `stateDir`: SIGTERM, then SIGKILL after 30 s. Returns false when
 * no broker was recorded or its process had already exited.
 */
export async function stopBroker(options: { stateDir?: string } = {}): Promise<boolean> {
  const stateDir = path.resolve(options.stateDir ?? DEFAULT_STATE_DIR);
  const info = readBrokerInfo(stateDir);
  if (!info) return false;

  let stopped = false;
  if (isBrokerProcess(info.pid, stateDir)) {
    process.kill(info.pid, 'SIGTERM');
    stopped = true;
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (isAlive(info.pid) && Date.now() < deadline) await sleep(200);
    if (isAlive(info.pid)) process.kill(info.pid, 'SIGKILL');
  }
  fs.rmSync(path.join(stateDir, 'broker.json'), { force: true });
  return stopped;
}

/** Reads `broker.json` from the state directory, or returns undefined when there is none. */
export function readBrokerInfo(stateDir: string = DEFAULT_STATE_DIR): BrokerInfo | undefined {
  const file = path.join(path.resolve(stateDir), 'broker.json');
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as BrokerInfo;
}

function writeBrokerInfo(stateDir: string, info: BrokerInfo): void {
  const file = path.join(stateDir, 'broker.json');
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(info, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

function serverProperties(ports: { port: number; controllerPort: number; dataDir: string }): string {
  return [
    '# Generated by scripts/kafka/broker.ts: a single-node KRaft broker for development and tests.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${ports.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${ports.port},CONTROLLER://127.0.0.1:${ports.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${ports.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${ports.dataDir}`,
    // tsalign creates every topic itself, with its partition count; a typo must fail, not create.
    'auto.create.topics.enable=false',
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    // One node: internal topics cannot have more than one replica. Few partitions keep the
    // first consumer group join fast.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=4',
    // Tests join and leave groups constantly; the default 3 s delay would slow every join.
    'group.initial.rebalance.delay.ms=0',
    'log.retention.hours=24',
    '',
  ].join('\n');
}

/** Runs Maven on pom.xml and returns the classpath it writes. */
function resolveClasspath(stateDir: string, deadline: number): string {
  const outputFile = path.join(stateDir, 'classpath.txt');
  const result = spawnSync(
    'mvn',
    ['-q', '-B', '-f', path.join(SCRIPT_DIR, 'pom.xml'), 'dependency:build-classpath', `-Dmdep.outputFile=${outputFile}`],
    { encoding: 'utf8', timeout: Math.max(1, deadline - Date.now()) },
  );
  if (result.status !== 0 || !fs.existsSync(outputFile)) {
    const detail = (result.stdout + result.stderr || result.error?.message || '').trim().slice(-2000);
    throw new BrokerStartError(
      `Resolving the Kafka jars with Maven failed (exit ${result.status ?? result.signal}); ` +
        `check access to Maven Central or ~/.m2: ${detail}`,
    );
  }
  return fs.readFileSync(outputFile, 'utf8').trim();
}

function requireTool(command: string, args: string[], advice: string): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new BrokerStartError(`\`${command}\` is not available (${result.error?.message ?? `exit ${result.status}`}). ${advice}`);
  }
}

/** Generates a Kafka cluster id: 16 random bytes in URL-safe base64, not starting with '-' (as Kafka's Uuid does). */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Asks the OS for a free port on 127.0.0.1; `avoid` lists ports already picked. */
export async function freeLoopbackPort(avoid: number[] = []): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address() as net.AddressInfo;
        server.close(() => resolve(address.port));
      });
    });
    if (!avoid.includes(port)) return port;
  }
}

/** Waits until the broker responds to a metadata request, failing early if its process exits. */
async function waitForMetadata(brokers: string, deadline: number, pid: number, logFile: string): Promise<void> {
  const kafka = new Kafka({
    clientId: 'tsalign-broker-check',
    brokers: [brokers],
    connectionTimeout: 1_000,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) {
      throw new BrokerStartError(`The Kafka broker (pid ${pid}) exited during startup; see ${logFile}:\n${tail(logFile)}`);
    }
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.fetchTopicMetadata({ topics: [] });
      return;
    } catch (error) {
      lastError = error;
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await sleep(500);
  }
  throw new BrokerStartError(
    `The Kafka broker at ${brokers} did not respond to a metadata request in time ` +
      `(last error: ${lastError instanceof Error ? lastError.message : String(lastError)}); see ${logFile}`,
  );
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True when `pid` is alive and, where /proc exists, runs kafka.Kafka with this state directory,
 * so that a recycled pid never gets signalled.
 */
function isBrokerProcess(pid: number, stateDir: string): boolean {
  if (!isAlive(pid)) return false;
  const cmdlineFile = `/proc/${pid}/cmdline`;
  if (!fs.existsSync('/proc/self/cmdline')) return true;
  try {
    const cmdline = fs.readFileSync(cmdlineFile, 'utf8');
    return cmdline.includes('kafka.Kafka') && cmdline.includes(stateDir);
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
