/**
 * `tsalign feed [FILE|-]`: reads prompts from a file or stdin and produces Prompt records to the
 * prompts topic. It first creates the tsalign topics that do not exist, explicitly (never by
 * broker auto-creation), unless `--no-create-topics` is given.
 */
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import { addCommonOptions, openTransport, parsePositiveNumber, parseWholeNumber, resolveCommonOptions, type CommonOptionValues } from '../common';
import { ProgressLine } from '../progress';
import { openInput } from '../../ingest/input';
import { DEFAULT_MAX_PROMPT_BYTES, FORMAT_OPTIONS, parsePromptInputs, sniffFormat, type FormatOption, type InputFormat } from '../../ingest/formats';
import { checkPath } from '../../ingest/fields';
import { describeLocation, type InputRecordError } from '../../ingest/errors';
import { toPrompt } from '../../ingest/prompts';
import { RecordWriter } from '../../streams/sink';
import { ensureTopics, requireTopic, topicName } from '../../streams/topics';
import { onShutdownSignal } from '../../streams/shutdown';
import type { DeadLetter, Prompt } from '../../streams/records';
import type { Transport } from '../../streams/transport';
import { errorMessage } from '../../util/errors';
import { childLogger } from '../../util/logger';

export const ON_ERROR_MODES = ['fail', 'skip', 'dlq'] as const;
export type OnErrorMode = (typeof ON_ERROR_MODES)[number];

/** Individual warnings logged per kind (bad records, duplicates) before only counting. */
const WARNINGS_LOGGED = 20;
/** Records queued for produce before reading pauses. */
const MAX_QUEUED = 2000;

interface FeedOptionValues extends CommonOptionValues {
  format: FormatOption;
  textField?: string;
  idField?: string;
  source?: string;
  tag: string[];
  rate?: string;
  follow?: boolean;
  maxPromptBytes: string;
  onError: OnErrorMode;
  /** False with --no-create-topics; true or undefined creates the missing topics. */
  createTopics?: boolean;
}

/** Counts printed in the summary. */
export interface FeedSummary {
  format: InputFormat;
  accepted: number;
  skipped: number;
  deadLettered: number;
  /** Prompts whose id appeared earlier in the same feed; they are produced too. */
  duplicates: number;
}

export function registerFeed(program: Command): void {
  const command = program
    .command('feed')
    .description('Read prompts from FILE (or stdin for -) and write them to the prompts topic. Gzip input is detected.')
    .argument('[file]', 'input file, or - for stdin', '-')
    .addOption(new Option('--format <format>', 'input format; auto picks JSON array, HH-RLHF, JSON lines or text').choices(FORMAT_OPTIONS).default('auto'))
    .option('--text-field <path>', 'dotted path of the prompt text in JSON records (default: text, else prompt)')
    .option('--id-field <path>', 'dotted path of the prompt id in JSON records (default: a hash of the text)')
    .option('--source <name>', 'source name stored with each prompt (default: the file name)')
    .option('--tag <tag>', 'tag stored with each prompt; repeat for several', (tag: string, tags: string[]) => [...tags, tag], [])
    .option('--rate <n>', 'produce at most N records per second')
    .option('--follow', 'keep reading the file as it grows, until Ctrl-C')
    .option('--max-prompt-bytes <n>', 'largest prompt in UTF-8 bytes', String(DEFAULT_MAX_PROMPT_BYTES))
    .addOption(new Option('--on-error <mode>', 'on a bad record: fail (exit 2), skip it, or write it to the dlq topic').choices(ON_ERROR_MODES).default('fail'))
    .option('--create-topics', "create the tsalign topics that do not exist (the default)")
    .option('--no-create-topics', 'create no topics, and exit 2 when the prompts topic (or dlq, with --on-error dlq) is missing');
  addCommonOptions(command).action(async (file: string, values: FeedOptionValues) => {
    await runFeed(file, values);
  });
}

/** Runs `tsalign feed`; resolves with the summary, throws UsageError on a bad record under `fail`. */
export async function runFeed(file: string, values: FeedOptionValues): Promise<FeedSummary> {
  const common = resolveCommonOptions(values);
  const maxPromptBytes = parseWholeNumber('--max-prompt-bytes', values.maxPromptBytes, 1);
  const rate = values.rate === undefined ? undefined : parsePositiveNumber('--rate', values.rate);
  if (values.textField !== undefined) checkPath(values.textField, '--text-field');
  if (values.idField !== undefined) checkPath(values.idField, '--id-field');
  const promptsTopic = topicName('prompts', common.topicPrefix);
  const dlqTopic = topicName('dlq', common.topicPrefix);
  const log = childLogger('feed', { input: file, topic: promptsTopic });

  const shutdown = onShutdownSignal(() => undefined);
  let transport: Transport | undefined;
  try {
    // The input opens first, so a wrong path fails before any connection is made.
    const input = await openInput(file, { follow: values.follow, signal: shutdown.signal });
    transport = await openTransport(common, 'tsalign-feed');
    if (values.createTopics !== false) await ensureTopics(transport, common.topicPrefix);
    await requireTopic(transport, promptsTopic);
    if (values.onError === 'dlq') await requireTopic(transport, dlqTopic);

    const sniffed = values.format === 'auto' ? await sniffFormat(input.chunks) : { format: values.format, chunks: input.chunks };
    log.info({ format: sniffed.format, gzip: input.gzip }, 'feeding prompts');

    const feeder = new Feeder(transport, {
      promptsTopic,
      dlqTopic,
      inputName: file === '-' ? 'stdin' : basename(file),
      source: values.source ?? (file === '-' ? 'stdin' : basename(file)),
      tags: values.tag,
      onError: values.onError,
      rate,
      signal: shutdown.signal,
    });
    const items = parsePromptInputs(sniffed.chunks, sniffed.format, { textField: values.textField, idField: values.idField, maxPromptBytes });
    const summary = await feeder.run(items, sniffed.format);
    return summary;
  } finally {
    shutdown.dispose();
    await transport?.close();
  }
}

interface FeederOptions {
  promptsTopic: string;
  dlqTopic: string;
  inputName: string;
  source: string;
  tags: string[];
  onError: OnErrorMode;
  rate?: number;
  signal: AbortSignal;
}

/** The feed loop: turns parsed items into produced prompts, dead letters and counts. */
class Feeder {
  private readonly log;
  private readonly prompts: RecordWriter<'Prompt'>;
  private readonly deadLetters: RecordWriter<'DeadLetter'>;
  private readonly progress = new ProgressLine();
  /** Ids produced so far, to count duplicates within this feed. */
  private readonly seenIds = new Set<string>();
  private accepted = 0;
  private skipped = 0;
  private deadLettered = 0;
  private duplicates = 0;
  /** The first failed produce; reading stops once it is set. */
  private produceError: unknown;
  /** Earliest time the next record may be produced under --rate, in ms. */
  private nextSlot = 0;

  constructor(
    transport: Transport,
    private readonly options: FeederOptions,
  ) {
    this.log = childLogger('feed', { input: options.inputName, topic: options.promptsTopic });
    this.prompts = new RecordWriter(transport, { topic: options.promptsTopic, recordType: 'Prompt', key: (prompt: Prompt) => prompt.id });
    this.deadLetters = new RecordWriter(transport, { topic: options.dlqTopic, recordType: 'DeadLetter', key: () => null });
  }

  async run(items: AsyncIterable<import('../../ingest/formats').InputItem>, format: InputFormat): Promise<FeedSummary> {
    let inputError: InputRecordError | undefined;
    try {
      for await (const item of items) {
        if (this.options.signal.aborted || this.produceError !== undefined) break;
        if (item.kind === 'prompt') {
          await this.throttle();
          this.accept(toPrompt(item.prompt, { source: this.options.source, tags: this.options.tags, now: () => BigInt(Date.now()) }));
        } else if (item.error.fatal || this.options.onError === 'fail') {
          inputError = item.error;
          break;
        } else {
          this.reject(item.error);
        }
        if (this.prompts.pending + this.deadLetters.pending >= MAX_QUEUED) await this.flush();
        this.progress.update(() => this.describe());
      }
    } finally {
      // Every record accepted before an error or a stop is kept: wait for its produce.
      await this.flush();
      this.progress.clear();
    }

    const summary: FeedSummary = { format, accepted: this.accepted, skipped: this.skipped, deadLettered: this.deadLettered, duplicates: this.duplicates };
    process.stderr.write(`tsalign feed: ${this.describe()} (format ${format}, topic ${this.options.promptsTopic})\n`);
    if (this.produceError !== undefined) {
      throw new Error(`producing to ${this.options.promptsTopic} failed: ${errorMessage(this.produceError)}`, { cause: this.produceError });
    }
    if (inputError !== undefined) {
      const kept = this.accepted > 0 ? `; the ${this.accepted} prompts before it were produced` : '';
      inputError.message = `${inputError.message}${kept}`;
      throw inputError;
    }
    return summary;
  }

  private accept(prompt: Prompt): void {
    if (this.seenIds.has(prompt.id)) {
      this.duplicates++;
      if (this.duplicates <= WARNINGS_LOGGED) this.log.warn({ promptId: prompt.id, duplicates: this.duplicates }, 'prompt repeats an earlier one in this feed');
    } else {
      this.seenIds.add(prompt.id);
    }
    this.prompts.write(prompt).then(
      () => this.accepted++,
      (error: unknown) => (this.produceError ??= error),
    );
  }

  private reject(error: InputRecordError): void {
    if (this.options.onError === 'skip') {
      this.skipped++;
      if (this.skipped <= WARNINGS_LOGGED) this.log.warn({ location: describeLocation(error.location), err: error.message }, 'skipped a bad record');
      return;
    }
    const letter: DeadLetter = {
      topic: `feed:${this.options.inputName}`,
      partition: -1,
      offset: BigInt(error.location.byteOffset ?? error.location.element ?? -1),
      key: null,
      value: error.raw,
      error: error.message,
      at: BigInt(Date.now()),
    };
    if (this.deadLettered < WARNINGS_LOGGED) this.log.warn({ location: describeLocation(error.location), err: error.message }, 'wrote a bad record to the dead-letter topic');
    this.deadLetters.write(letter).then(
      () => this.deadLettered++,
      (produceError: unknown) => (this.produceError ??= produceError),
    );
  }

  /** Waits for the next --rate slot; returns early when the feed is stopped. */
  private async throttle(): Promise<void> {
    if (this.options.rate === undefined) return;
    const now = Date.now();
    const wait = this.nextSlot - now;
    this.nextSlot = Math.max(this.nextSlot, now) + 1000 / this.options.rate;
    if (wait <= 0) return;
    await sleep(wait, undefined, { signal: this.options.signal }).catch(() => undefined);
  }

  private async flush(): Promise<void> {
    await Promise.all([this.prompts.flush(), this.deadLetters.flush()]);
  }

  private describe(): string {
    return `${this.accepted} accepted, ${this.skipped} skipped, ${this.deadLettered} dead-lettered, ${this.duplicates} duplicates`;
  }
}
