import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The structured log: JSON lines on stderr (stdout stays for command output). Keys that could hold
 * secrets are censored by pino itself as a second line of defence behind the Secret type.
 */
export function createLogger(level: string = process.env.REGENT_LOG_LEVEL ?? 'info', destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: { app: 'regent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', '*.password', '*.*.password', 'token', '*.token', 'authorization', '*.authorization'], censor: '***' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination as pino.DestinationStream,
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
