/** Turns avsc validation failures into SchemaValidationErrors that name the field and value. */

import avro from 'avsc';

import { SchemaValidationError } from './errors.js';

interface Violation {
  path: string;
  value: unknown;
  expected: avro.Type;
}

/**
 * Validates `value` against `type` and returns the error describing the first invalid field, or
 * `undefined` when the value is valid.
 */
export function findValidationError(
  recordType: string,
  type: avro.Type,
  value: unknown,
): SchemaValidationError | undefined {
  const violations: Violation[] = [];
  type.isValid(value, {
    errorHook: (path, invalid, expected) => {
      violations.push({ path: formatPath(type, path), value: invalid, expected });
    },
  });
  const first = violations[0];
  if (first === undefined) {
    return undefined;
  }

  const field = first.path === '' ? 'the record' : first.path;
  const actual = first.value === undefined ? 'is missing' : `is ${describeValue(first.value)}`;
  let message =
    `Invalid ${recordType} record: ${field} ${actual}, but the schema expects ` +
    `${describeType(first.expected)}.`;
  if (violations.length > 1) {
    const others = violations.slice(1, 4).map((violation) => violation.path || 'the record');
    const more = violations.length > 4 ? ', ...' : '';
    const count = violations.length - 1;
    message += ` ${count} more invalid field${count === 1 ? '' : 's'}: ${others.join(', ')}${more}.`;
  }
  message += ' Fix the value before encoding it.';
  return new SchemaValidationError(message, first.path, first.value);
}

/**
 * Formats avsc's error path (field names, array indices and map keys as strings) as a
 * JavaScript-style accessor path such as `candidates[2].logprob` or `meta["lang"]`.
 */
function formatPath(root: avro.Type, segments: readonly string[]): string {
  let current: avro.Type | undefined = root;
  let path = '';
  for (const segment of segments) {
    current = current === undefined ? undefined : nonNullBranch(current);
    if (current instanceof avro.types.ArrayType) {
      path += `[${segment}]`;
      current = current.itemsType;
    } else if (current instanceof avro.types.MapType) {
      path += `[${JSON.stringify(segment)}]`;
      current = current.valuesType as avro.Type;
    } else {
      path += path === '' ? segment : `.${segment}`;
      current =
        current instanceof avro.types.RecordType ? current.field(segment)?.type : undefined;
    }
  }
  return path;
}

function nonNullBranch(type: avro.Type): avro.Type {
  if (type instanceof avro.types.UnwrappedUnionType) {
    return type.types.find((branch) => branch.typeName !== 'null') ?? type;
  }
  return type;
}

/** Names an avsc type the way a TypeScript caller thinks of it. */
function describeType(type: avro.Type): string {
  if (type instanceof avro.types.UnwrappedUnionType) {
    return type.types.map(describeType).join(' or ');
  }
  if (type instanceof avro.types.EnumType) {
    return `one of ${type.symbols.map((symbol) => JSON.stringify(symbol)).join(', ')}`;
  }
  if (type instanceof avro.types.RecordType) {
    return `a ${type.name ?? 'record'} object`;
  }
  switch (type.typeName) {
    case 'abstract:long':
    case 'long':
      return 'a long (a bigint from -2^63 to 2^63-1)';
    case 'int':
      return 'an int (an integer number from -2^31 to 2^31-1)';
    case 'double':
    case 'float':
      return `a ${type.typeName} (a number)`;
    case 'null':
      return 'null';
    case 'bytes':
      return 'bytes (a Buffer)';
    case 'array':
      return 'an array';
    case 'map':
      return 'a map (a plain object)';
    default:
      return `a ${type.typeName}`;
  }
}

/** Shows a value in an error message: short, typed, and safe for bigint and Buffer. */
function describeValue(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 60)}...` : value;
    return `${JSON.stringify(shown)} (string)`;
  }
  if (typeof value === 'bigint') {
    return `${value}n (bigint)`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return `${String(value)} (${typeof value})`;
  }
  if (Buffer.isBuffer(value)) {
    return `a Buffer of ${value.length} bytes`;
  }
  if (Array.isArray(value)) {
    return `an array of ${value.length} items`;
  }
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
