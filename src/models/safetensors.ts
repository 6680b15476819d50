import { UsageError } from '../util/errors';

/**
 * The safetensors format (Hugging Face): an 8-byte little-endian unsigned header length N, N bytes
 * of JSON mapping each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets into
 * the data that follows the header), an optional `__metadata__` entry of strings, then raw
 * little-endian tensor data.
 */

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | string;

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** The tensor's values as float32; F64, F32, F16 and BF16 are supported. */
  toFloat32(): Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

const BYTES_PER_ELEMENT: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

/** Parses a safetensors file; tensor data is converted only when `toFloat32` is called. */
export function parseSafetensors(bytes: Buffer, source = 'safetensors input'): SafetensorsFile {
  if (bytes.length < 8) throw new UsageError(`${source} is ${bytes.length} bytes, too short for a safetensors header.`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (headerLength > bytes.length - 8) {
    throw new UsageError(`${source} declares a ${headerLength}-byte header but has only ${bytes.length - 8} bytes after the length field: the file is truncated or not safetensors.`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`${source} has a header that is not valid JSON: the file is corrupted or not safetensors.`, { cause: error });
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = value as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [begin, end] = offsets;
    const count = shape.reduce((a, b) => a * b, 1);
    const width = BYTES_PER_ELEMENT[dtype];
    if (begin < 0 || end < begin || dataStart + end > bytes.length) {
      throw new UsageError(`${source}: tensor ${name} has data offsets [${begin}, ${end}] outside the file.`);
    }
    if (width !== undefined && end - begin !== count * width) {
      throw new UsageError(`${source}: tensor ${name} (${dtype} [${shape.join(', ')}]) needs ${count * width} bytes but has ${end - begin}.`);
    }
    const data = bytes.subarray(dataStart + begin, dataStart + end);
    tensors.set(name, { dtype, shape, toFloat32: () => toFloat32(data, dtype, count, `${source}: tensor ${name}`) });
  }
  return { tensors, metadata };
}

/** Encodes float32 tensors as a safetensors file (F32 only). */
export function encodeSafetensors(
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
  metadata?: Record<string, string>,
): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, { shape, data }] of Object.entries(tensors)) {
    const bytes = Buffer.alloc(data.length * 4);
    data.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([length, Buffer.from(json, 'utf8'), ...parts]);
}

function toFloat32(data: Buffer, dtype: string, count: number, what: string): Float32Array {
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = data.readFloatLE(i * 4);
      return out;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = data.readDoubleLE(i * 8);
      return out;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(data.readUInt16LE(i * 2));
      return out;
    case 'BF16': {
      // bfloat16 is the upper half of a float32.
      const word = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) word[i] = data.readUInt16LE(i * 2) << 16;
      return out;
    }
    default:
      throw new UsageError(`${what} has dtype ${dtype}; only F64, F32, F16 and BF16 can be read as float32.`);
  }
}

/** Converts an IEEE 754 half-precision bit pattern to a number. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // subnormal
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
