// Strict validation of positional JSON-RPC params: each check names the parameter and what
// was wrong, so a client learns exactly why it got -32602.
import { invalidParams } from './errors.ts';

const HASH_RE = /^0x[0-9a-f]{64}$/;
const HEX_RE = /^0x(?:[0-9a-f]{2})*$/;

/** Checks the params member's shape and count; absent params count as []. */
export function paramList(raw: unknown, min: number, max: number, names: string[]): unknown[] {
  const list = raw === undefined ? [] : raw;
  if (!Array.isArray(list)) throw invalidParams('params must be an array');
  if (list.length < min || list.length > max) {
    const expected = min === max ? `${min}` : `${min} to ${max}`;
    const shape = names.length ? ` [${names.join(', ')}]` : ' []';
    throw invalidParams(`expected ${expected} param${max === 1 ? '' : 's'}${shape}, got ${list.length}`);
  }
  return list;
}

export function hashParam(v: unknown, name: string): string {
  if (typeof v !== 'string' || !HASH_RE.test(v)) throw invalidParams(`${name} must be 0x followed by 64 lowercase hex characters`);
  return v;
}

export function hexBytesParam(v: unknown, name: string): string {
  if (typeof v !== 'string' || !HEX_RE.test(v)) throw invalidParams(`${name} must be 0x followed by an even number of lowercase hex characters`);
  return v;
}

export function heightParam(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalidParams(`${name} must be a non-negative integer`);
  return v;
}

export function positiveIntParam(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalidParams(`${name} must be a positive integer`);
  return v;
}

export function boolParam(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw invalidParams(`${name} must be true or false`);
  return v;
}

export function stringParam(v: unknown, name: string, maxLength: number): string {
  if (typeof v !== 'string') throw invalidParams(`${name} must be a string`);
  if (v.length > maxLength) throw invalidParams(`${name} is longer than ${maxLength} characters`);
  return v;
}

/** An optional trailing param: absent and null both mean "not given". */
export function optional<T>(v: unknown, check: (v: unknown) => T): T | undefined {
  return v === undefined || v === null ? undefined : check(v);
}
