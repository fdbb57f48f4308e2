import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * json: one JSON object per line (for journald, log shippers and the tests that parse `regent run`).
 * text: one human line per record (time, level, message and its reason). auto: text when the
 * destination is a terminal, json otherwise, so a pipe or a service manager always gets JSON.
 */
export type LogFormat = 'auto' | 'json' | 'text';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'text'];

let defaultFormat: LogFormat = 'auto';

/** Set once by the CLI from `--log-format` (or REGENT_LOG_FORMAT) before any command runs. */
export function setLogFormat(format: LogFormat): void {
  defaultFormat = format;
}

/** The format a logger writing to `destination` uses. */
export function resolveLogFormat(destination: NodeJS.WritableStream = process.stderr, format: LogFormat = defaultFormat): 'json' | 'text' {
  if (format !== 'auto') return format;
  return (destination as NodeJS.WriteStream).isTTY ? 'text' : 'json';
}

/**
 * The structured log on stderr (stdout stays for command output). Keys that could hold secrets are
 * censored by pino itself as a second line of defence behind the Secret type; the text format is
 * rendered from the censored record, so it inherits that.
 */
export function createLogger(level: string = process.env.REGENT_LOG_LEVEL || 'info', destination: NodeJS.WritableStream = process.stderr, format: LogFormat = defaultFormat): Logger {
  const out = resolveLogFormat(destination, format) === 'text' ? textDestination(destination) : destination;
  return pino(
    {
      level,
      base: { app: 'regent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', '*.password', '*.*.password', 'token', '*.token', 'authorization', '*.authorization'], censor: '***' },
      formatters: { level: (label) => ({ level: label }) },
    },
    out as pino.DestinationStream,
  );
}

/**
 * The log of a one-shot CLI action run without a manager (switchover, failover, rejoin, repair):
 * the command prints its own steps and its outcome, so on a terminal only errors of the machinery
 * underneath are worth a line; in JSON (a pipe, or --log-format json) warnings are kept as before.
 * REGENT_LOG_LEVEL overrides both.
 */
export function actionLogger(): Logger {
  const level = process.env.REGENT_LOG_LEVEL || (resolveLogFormat() === 'text' ? 'error' : 'warn');
  return createLogger(level);
}

const SYMBOL: Record<string, string> = { trace: '·', debug: '·', info: 'ℹ', warn: '⚠', error: '✖', fatal: '✖' };

/** One pino JSON record as a human line: `12:00:01.234 ⚠ node1 unreachable: connection refused`. */
export function formatTextRecord(line: string): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const time = typeof r['time'] === 'string' ? r['time'].slice(11, 23) : '';
  const level = String(r['level'] ?? 'info');
  const msg = String(r['msg'] ?? r['event'] ?? '');
  let why = ['reason', 'err', 'error'].map((k) => r[k]).find((v): v is string => typeof v === 'string' && v !== '');
  // Reasons often start with the endpoint the message already names ("host:port: access denied").
  const subject = msg.split(' ')[0];
  if (why && subject && why.startsWith(`${subject}: `)) why = why.slice(subject.length + 2);
  return `${time} ${SYMBOL[level] ?? level} ${msg}${why && !msg.includes(why) ? `: ${why}` : ''}\n`;
}

function textDestination(destination: NodeJS.WritableStream): { write: (line: string) => boolean } {
  return { write: (line: string) => destination.write(formatTextRecord(line)) };
}

/**
 * A destination that holds every record until `release()` (then writes them, in order, and passes
 * the rest through) or `discard()`. `regent run` holds its start-up log until the first probe round
 * decided whether the start stands: a start refused for rejected credentials is then one line, not
 * that line buried under what every prober and analysis said about the same refusal.
 */
export function heldDestination(inner: NodeJS.WritableStream): NodeJS.WritableStream & { release(): void; discard(): void } {
  let held: string[] | undefined = [];
  const dest = {
    isTTY: (inner as NodeJS.WriteStream).isTTY,
    write(line: string): boolean {
      if (held) {
        held.push(line);
        return true;
      }
      return inner.write(line);
    },
    release(): void {
      const lines = held ?? [];
      held = undefined;
      for (const l of lines) inner.write(l);
    },
    discard(): void {
      held = undefined;
    },
  };
  return dest as unknown as NodeJS.WritableStream & { release(): void; discard(): void };
}

export const silentLogger: Logger = pino({ level: 'silent' });
