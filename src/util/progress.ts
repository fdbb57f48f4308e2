import ora, { type Ora } from 'ora';

/**
 * Progress of a long operation. In a terminal it is a spinner on stderr; elsewhere (CI, pipes,
 * tests) it prints one line per finished step, so logs still show where time went.
 */
export interface Progress {
  step(text: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
  info(text: string): void;
}

export function createProgress(opts: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet) return { step() {}, succeed() {}, fail() {}, info() {} };
  if (!stream.isTTY) return new LineProgress(stream);
  return new SpinnerProgress(ora({ stream }));
}

class SpinnerProgress implements Progress {
  #started = Date.now();
  constructor(private readonly spinner: Ora) {}
  step(text: string): void {
    this.#started = Date.now();
    if (this.spinner.isSpinning) this.spinner.text = text;
    else this.spinner.start(text);
  }
  succeed(text?: string): void {
    const t = text ?? this.spinner.text;
    this.spinner.succeed(`${t} (${Date.now() - this.#started} ms)`);
  }
  fail(text?: string): void {
    this.spinner.fail(text ?? this.spinner.text);
  }
  info(text: string): void {
    if (this.spinner.isSpinning) this.spinner.stop();
    this.spinner.info(text);
  }
}

class LineProgress implements Progress {
  #current = '';
  #started = Date.now();
  constructor(private readonly stream: NodeJS.WritableStream) {}
  step(text: string): void {
    this.#current = text;
    this.#started = Date.now();
  }
  succeed(text?: string): void {
    this.stream.write(`✔ ${text ?? this.#current} (${Date.now() - this.#started} ms)\n`);
  }
  fail(text?: string): void {
    this.stream.write(`✖ ${text ?? this.#current}\n`);
  }
  info(text: string): void {
    this.stream.write(`ℹ ${text}\n`);
  }
}
