import { createHash } from 'node:crypto';
import { Secret } from './secret.ts';

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/**
 * A short hash of a value for "did this change?" comparisons, secrets and PEM buffers included
 * (hashed in, never readable from the result). Reads each value from its holder, because
 * JSON.stringify hands a replacer what toJSON made of it (a Secret's mask).
 */
export function fingerprint(value: unknown): string {
  return hash(
    JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
      const original = this[key];
      if (original instanceof Secret) return `secret:${hash(original.reveal())}`;
      if (Buffer.isBuffer(original)) return `bytes:${hash(original.toString('base64'))}`;
      return v;
    }),
  );
}
