import type { Row, Vars } from './flavor.ts';

/** Reading loosely typed server answers (strings, numbers, nulls, BigInt strings) into exact types. */

export function foldVariables(rows: Row[]): Vars {
  const out: Vars = {};
  for (const r of rows) {
    const name = r['Variable_name'] ?? r['VARIABLE_NAME'];
    const value = r['Value'] ?? r['VARIABLE_VALUE'];
    if (typeof name === 'string') out[name.toLowerCase()] = value === null || value === undefined ? '' : String(value);
  }
  return out;
}

export function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}

/** ON/OFF, 1/0, YES/NO as the servers print booleans. */
export function flag(v: unknown): boolean {
  const t = text(v).trim().toUpperCase();
  return t === 'ON' || t === '1' || t === 'YES' || t === 'TRUE';
}

export function int(v: unknown, fallback = 0): number {
  const t = text(v).trim();
  if (t === '') return fallback;
  const n = Number(t);
  return Number.isFinite(n) ? n : fallback;
}

export function nullableNumber(v: unknown): number | null {
  const t = text(v).trim();
  if (t === '' || t.toUpperCase() === 'NULL') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

export function big(v: unknown): bigint {
  const t = text(v).trim();
  if (!/^\d+$/.test(t)) return 0n;
  return BigInt(t);
}

export function ioThreadState(v: unknown): 'yes' | 'connecting' | 'no' {
  const t = text(v).trim().toLowerCase();
  if (t === 'yes') return 'yes';
  if (t === 'connecting' || t === 'preparing') return 'connecting';
  return 'no';
}
