import { inspect } from 'node:util';

/**
 * A password or token. Every way of turning it into text (string conversion, JSON, util.inspect, pino)
 * prints a mask, so a secret that ends up in a log line, an API response or an error message by
 * accident shows up as `***`. Only `reveal()` gives the value, and only code that hands it to a driver
 * or a child process should call it.
 */
export class Secret {
  readonly #value: string;
  /** Where the value came from, for error messages ("env REGENT_PW", "file /x/pw"): never the value. */
  readonly source: string;

  constructor(value: string, source: string) {
    this.#value = value;
    this.source = source;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '***';
  }

  toJSON(): string {
    return '***';
  }

  [inspect.custom](): string {
    return `Secret(${this.source})`;
  }
}
