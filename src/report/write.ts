/**
 * Writing of report.json and report.html, each atomically (a temporary file renamed into place)
 * so a reader never sees half a report.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../config/canonical';
import { renderReportHtml } from './html';
import type { RunReport } from './measures';

/** Writes a file atomically: to `path.tmp-<pid>` first, then renamed over `path`. */
export function writeFileAtomic(path: string, data: string | Buffer): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

/** Writes report.json and report.html into `dir` and returns their paths. */
export function writeReport(dir: string, report: RunReport): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeFileAtomic(json, `${JSON.stringify(JSON.parse(canonicalJson(report)), null, 2)}\n`);
  writeFileAtomic(html, renderReportHtml(report));
  return { json, html };
}
