/**
 * Validation of a configuration document against `CONFIG_SCHEMA`: unknown keys, wrong types and
 * out-of-range values are rejected with the dotted key, the value and what is allowed.
 */
import { UsageError } from '../util/errors';
import { CONFIG_SCHEMA, type FieldSpec, type SectionSpec, type TsalignConfig, defaultConfig, isFieldSpec } from './schema';

/** Returns the Levenshtein edit distance of two strings. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Lists the dotted paths of every setting. */
export function configKeys(section: SectionSpec = CONFIG_SCHEMA, prefix = ''): string[] {
  const keys: string[] = [];
  for (const [key, spec] of Object.entries(section)) {
    const path = prefix + key;
    if (isFieldSpec(spec)) keys.push(path);
    else keys.push(...configKeys(spec, `${path}.`));
  }
  return keys;
}

/**
 * Returns the known key closest to an unknown one, or null when none is close. Compares the
 * last segment with the section's own keys first (a typo in a leaf), then the whole dotted path
 * with every key (a setting put in the wrong section).
 */
export function closestKey(path: string, siblings: readonly string[]): string | null {
  const prefix = path.includes('.') ? path.slice(0, path.lastIndexOf('.') + 1) : '';
  const leaf = path.slice(prefix.length).toLowerCase();
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const sibling of siblings) {
    const distance = editDistance(leaf, sibling.toLowerCase());
    if (distance < bestDistance) {
      best = prefix + sibling;
      bestDistance = distance;
    }
  }
  if (best !== null && bestDistance <= Math.max(2, Math.floor(leaf.length / 3))) return best;

  for (const key of configKeys()) {
    const keyLeaf = key.slice(key.lastIndexOf('.') + 1).toLowerCase();
    if (keyLeaf === leaf) return key;
  }
  return null;
}

function describeAllowed(spec: FieldSpec): string {
  switch (spec.kind) {
    case 'int':
      return `an integer from ${spec.min} to ${spec.max}`;
    case 'number':
      return `a number ${spec.minExclusive ? 'above' : 'from'} ${spec.min} ${spec.minExclusive ? 'and up to' : 'to'} ${spec.max}`;
    case 'enum':
      return `one of ${spec.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'string':
      return 'a string';
  }
}

/** Returns an error text for an invalid value of a field, or null when it is valid. */
function checkField(path: string, spec: FieldSpec, value: unknown): string | null {
  const shown = JSON.stringify(value) ?? String(value);
  const invalid = `${path}: invalid value ${shown}; expected ${describeAllowed(spec)}`;
  switch (spec.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < spec.min || value > spec.max) return invalid;
      return null;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return invalid;
      if (value > spec.max || value < spec.min || (spec.minExclusive && value === spec.min)) return invalid;
      return null;
    case 'enum':
      return typeof value === 'string' && spec.values.includes(value) ? null : invalid;
    case 'string':
      return typeof value === 'string' ? null : invalid;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merges `input` onto `base` section by section, collecting an error for every bad key or value. */
function mergeSection(
  section: SectionSpec,
  base: Record<string, unknown>,
  input: Record<string, unknown>,
  prefix: string,
  errors: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(input)) {
    const path = prefix + key;
    const spec = section[key];
    if (spec === undefined || !Object.prototype.hasOwnProperty.call(section, key)) {
      const suggestion = closestKey(path, Object.keys(section));
      errors.push(`${path}: unknown key${suggestion ? `; did you mean "${suggestion}"?` : ''} (known keys here: ${Object.keys(section).join(', ')})`);
      continue;
    }
    if (isFieldSpec(spec)) {
      const problem = checkField(path, spec, value);
      if (problem) errors.push(problem);
      else out[key] = value;
    } else if (!isPlainObject(value)) {
      errors.push(`${path}: invalid value ${JSON.stringify(value)}; expected an object with keys ${Object.keys(spec).join(', ')}`);
    } else {
      out[key] = mergeSection(spec, base[key] as Record<string, unknown>, value, `${path}.`, errors);
    }
  }
  return out;
}

/** Checks the rules that tie several settings together. */
function checkCrossFields(config: TsalignConfig, errors: string[]): void {
  for (const model of ['policy', 'student'] as const) {
    const size = config.models[model];
    if (size.embedding % size.heads !== 0) {
      errors.push(`models.${model}.heads: ${size.heads} does not divide models.${model}.embedding (${size.embedding}); pick a divisor of it`);
    }
  }
  if (config.chain.maxTokens >= config.models.policy.contextLength) {
    errors.push(
      `chain.maxTokens: ${config.chain.maxTokens} leaves no room for the prompt in models.policy.contextLength (${config.models.policy.contextLength}); lower it or raise the context length`,
    );
  }
  if (config.teacher.kind === 'reward-model' && config.teacher.rewardModel.checkpoint === '') {
    errors.push('teacher.rewardModel.checkpoint: missing; the reward-model teacher needs the checkpoint directory of a reward model (e.g. from `tsalign rm fit`)');
  }
  if (config.teacher.kind === 'openai' && config.teacher.openai.model === '') {
    errors.push('teacher.openai.model: missing; the openai teacher needs a judge model name');
  }
}

/**
 * Validates a configuration document (parsed JSON) and returns the full configuration with
 * defaults filled in, merged onto `base` (the defaults unless given). Throws a `UsageError`
 * that lists every invalid key with its dotted path.
 */
export function validateConfig(input: unknown, base: TsalignConfig = defaultConfig()): TsalignConfig {
  if (!isPlainObject(input)) {
    throw new UsageError(`invalid configuration: expected a JSON object with sections ${Object.keys(CONFIG_SCHEMA).join(', ')}, got ${JSON.stringify(input)}`);
  }
  const errors: string[] = [];
  const merged = mergeSection(CONFIG_SCHEMA, base as unknown as Record<string, unknown>, input, '', errors) as unknown as TsalignConfig;
  if (errors.length === 0) checkCrossFields(merged, errors);
  if (errors.length > 0) {
    throw new UsageError(`invalid configuration:\n  ${errors.join('\n  ')}`);
  }
  return merged;
}

/** Returns the field spec at a dotted path, or throws a `UsageError` naming the closest key. */
export function fieldAt(path: string): FieldSpec {
  let section: SectionSpec = CONFIG_SCHEMA;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    const spec = Object.prototype.hasOwnProperty.call(section, parts[i]!) ? section[parts[i]!] : undefined;
    const soFar = parts.slice(0, i + 1).join('.');
    if (spec === undefined) {
      const suggestion = closestKey(soFar, Object.keys(section));
      throw new UsageError(`${soFar}: unknown key${suggestion ? `; did you mean "${suggestion}"?` : ''}`);
    }
    if (isFieldSpec(spec)) {
      if (i !== parts.length - 1) throw new UsageError(`${path}: unknown key; ${soFar} is a setting, not a section`);
      return spec;
    }
    section = spec;
  }
  throw new UsageError(`${path}: is a section, not a setting; set one of its keys (${Object.keys(section).join(', ')})`);
}

/**
 * Turns a `key=value` override from the command line into a nested object, parsing the value by
 * the field's type. Throws a `UsageError` for an unknown key or an unparseable value.
 */
export function parseOverride(assignment: string): Record<string, unknown> {
  const equals = assignment.indexOf('=');
  if (equals <= 0) {
    throw new UsageError(`invalid --set ${JSON.stringify(assignment)}; expected KEY=VALUE with a dotted key such as chain.tau=0.9`);
  }
  const path = assignment.slice(0, equals).trim();
  const text = assignment.slice(equals + 1).trim();
  const spec = fieldAt(path);
  let value: unknown = text;
  if (spec.kind === 'int' || spec.kind === 'number') {
    value = text === '' ? NaN : Number(text);
    if (!Number.isFinite(value)) throw new UsageError(`${path}: invalid value ${JSON.stringify(text)}; expected ${describeAllowed(spec)}`);
  }
  return nest(path, value);
}

/** Builds `{a: {b: value}}` from `a.b`. */
export function nest(path: string, value: unknown): Record<string, unknown> {
  const parts = path.split('.');
  let out: Record<string, unknown> = { [parts.pop()!]: value };
  while (parts.length > 0) out = { [parts.pop()!]: out };
  return out;
}
