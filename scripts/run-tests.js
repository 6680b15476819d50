#!/usr/bin/env node
/**
 * `npm test`: runs the test files with Node's test runner, with a throwaway Kafka broker.
 *
 *   npm test                      every test/**\/*.test.ts file
 *   npm test -- test/avro         the test files under a folder (or single files)
 *   npm test -- --test-only ...   options starting with '-' go to `node --test` as they are
 *
 * When KAFKA_BROKERS is unset and a selected file uses test/helpers/kafka, a broker is started
 * in .kafka/test-<pid>/ (scripts/kafka/cli.ts), KAFKA_BROKERS points the tests at it, and it is
 * stopped afterwards whatever happens. When it cannot start, the reason goes to stderr and to
 * TSALIGN_KAFKA_UNAVAILABLE so Kafka tests skip with it, unless TSALIGN_REQUIRE_KAFKA=1, where
 * a missing broker is a failure. The exit code is the test runner's.
 */
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..');
const KAFKA_CLI = path.join(REPO_ROOT, 'scripts', 'kafka', 'cli.ts');

/** Lists the *.test.ts files under a directory, recursively, sorted by path. */
function listTestFiles(dir) {
  const files = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') files.push(...listTestFiles(full));
    } else if (entry.isFile() && entry.name.endsWith('.test.ts')) {
      files.push(full);
    }
  }
  return files.sort();
}

/** Splits argv into runner options and selected test files (folders expand to their files). */
function selectTests(argv) {
  const options = [];
  const files = [];
  let selected = false;
  for (const arg of argv) {
    if (arg.startsWith('-')) {
      options.push(arg);
      continue;
    }
    const full = path.resolve(arg);
    if (!fs.existsSync(full)) {
      // A value of an option such as `--test-name-pattern foo`.
      options.push(arg);
      continue;
    }
    selected = true;
    if (fs.statSync(full).isDirectory()) files.push(...listTestFiles(full));
    else files.push(full);
  }
  if (!selected) files.push(...listTestFiles(path.join(REPO_ROOT, 'test')));
  return { options, files: [...new Set(files)].map((file) => path.relative(process.cwd(), file)) };
}

function needsKafka(files) {
  return files.some((file) => /helpers\/kafka/.test(fs.readFileSync(file, 'utf8')));
}

/** Runs scripts/kafka/cli.ts; its stderr is copied to ours once it exits. */
function runKafkaCli(args) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', KAFKA_CLI, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  process.stderr.write(result.stderr ?? '');
  return result;
}

/** Starts the throwaway broker; returns its address, or throws with the reason it could not. */
function startBroker(stateDir) {
  const result = runKafkaCli(['start', '--state-dir', stateDir, '--json']);
  if (result.status !== 0) {
    const lastLine = (result.stderr ?? '').trim().split('\n').pop() || `exit ${result.status ?? result.signal}`;
    throw new Error(`starting the test broker failed: ${lastLine.replace(/^kafka: /, '')}`);
  }
  return JSON.parse(result.stdout.trim().split('\n').pop()).brokers;
}

function stopBroker(stateDir) {
  const result = runKafkaCli(['stop', '--state-dir', stateDir]);
  if (result.status !== 0) process.stderr.write(`run-tests: stopping the test broker failed; check for a java process using ${stateDir}\n`);
  else fs.rmSync(stateDir, { recursive: true, force: true });
}

/**
 * Runs `node --test` and resolves with its exit code. Ctrl-C reaches the runner through the
 * process group; a SIGTERM sent to this process alone is passed on, so the broker is still
 * stopped after the runner ends.
 */
function runTests(options, files) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=1', ...options, ...files],
      { stdio: 'inherit', env: process.env },
    );
    const ignoreInterrupt = () => {};
    const forwardTerminate = () => child.kill('SIGTERM');
    process.on('SIGINT', ignoreInterrupt);
    process.on('SIGTERM', forwardTerminate);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignoreInterrupt);
      process.off('SIGTERM', forwardTerminate);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

async function main() {
  const { options, files } = selectTests(process.argv.slice(2));
  if (files.length === 0) {
    process.stderr.write('run-tests: no *.test.ts files selected\n');
    return 1;
  }

  const requireKafka = process.env.TSALIGN_REQUIRE_KAFKA === '1';
  let stateDir;
  if (!process.env.KAFKA_BROKERS && needsKafka(files)) {
    const candidateDir = path.join(REPO_ROOT, '.kafka', `test-${process.pid}`);
    try {
      process.stderr.write('run-tests: starting a throwaway Kafka broker\n');
      stateDir = candidateDir;
      process.env.KAFKA_BROKERS = startBroker(candidateDir);
      process.stderr.write(`run-tests: KAFKA_BROKERS=${process.env.KAFKA_BROKERS}\n`);
    } catch (error) {
      const reason = `no Kafka broker: ${error.message}`;
      process.stderr.write(`run-tests: ${reason}\n`);
      if (requireKafka) {
        if (stateDir) stopBroker(stateDir);
        process.stderr.write('run-tests: TSALIGN_REQUIRE_KAFKA=1, so a missing broker is a failure\n');
        return 1;
      }
      process.env.TSALIGN_KAFKA_UNAVAILABLE = reason;
    }
  }

  try {
    return await runTests(options, files);
  } finally {
    if (stateDir) stopBroker(stateDir);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`run-tests: ${error.stack ?? error}\n`);
    process.exitCode = 1;
  },
);
