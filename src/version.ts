import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

let cachedVersion: string | null = null;

/** Returns the `version` of tsalign's package.json, found by walking up from this file. */
export function tsalignVersion(): string {
  if (cachedVersion !== null) return cachedVersion;
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tsalign' && typeof pkg.version === 'string') return (cachedVersion = pkg.version);
    }
    const parent = path.dirname(dir);
    if (parent === dir) return (cachedVersion = 'unknown');
    dir = parent;
  }
}
