// Writes a report as report.json and report.html in one folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { renderHtml } from './html.ts';
import type { BenchReport } from './report.ts';

/** A folder name for a report made now: bench-out/2026-11-24T03-26-16Z. */
export function defaultOutDir(now = new Date()): string {
  return join('bench-out', now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-'));
}

export async function writeReport(report: BenchReport, outDir: string): Promise<{ json: string; html: string }> {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(html, await renderHtml(report));
  return { json, html };
}
