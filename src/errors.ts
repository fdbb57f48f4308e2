/**
 * Every error Regent raises on purpose, in one module. Each carries a stable `code` that callers
 * (the CLI, the API, tests) match instead of class names or message text, and the exit code the
 * CLI ends with when the error ends a command. Messages are one line a person can act on, never
 * containing a secret.
 */

export type ErrorCode =
  | 'USAGE'
  | 'CONFIG'
  | 'SANDBOX'
  | 'BOOTSTRAP_REFUSED'
  | 'DB'
  | 'MISSING_DEPENDENCY'
  | 'UNSUPPORTED_SERVER'
  | 'RECOVERY_REFUSED'
  | 'CLONE_REFUSED'
  | 'ETCD_ACCESS_REFUSED'
  | 'NOT_LEADER'
  | 'CLUSTER_LOCKED'
  | 'GTID_PARSE'
  | 'GTID_FLAVOR_MISMATCH'
  | 'STEP_FAILED'
  | 'CREDENTIALS_REJECTED'
  | 'DATA_PLANE'
  | 'API';

/** CLI exit codes: 1 an action was refused or failed (the cluster is as it was), 2 unusable input. */
export const EXIT = { ok: 0, refusedOrFailed: 1, unusableInput: 2 } as const;

export abstract class RegentError extends Error {
  abstract readonly code: ErrorCode;
  /** What the CLI exits with when this error ends a command. */
  readonly exitCode: number = EXIT.unusableInput;
}

/** Input Regent cannot work with (a bad argument, an unknown cluster or instance). */
export class UsageError extends RegentError {
  override name = 'UsageError';
  readonly code = 'USAGE';
}

/** A configuration problem: one line that names the file, the field and the fix. */
export class ConfigError extends RegentError {
  override name = 'ConfigError';
  readonly code = 'CONFIG';
}

export class SandboxError extends RegentError {
  override name = 'SandboxError';
  readonly code = 'SANDBOX';
}

/** Bootstrap found reasons not to set replication up; nothing was changed. */
export class BootstrapRefused extends RegentError {
  override name = 'BootstrapRefused';
  readonly code = 'BOOTSTRAP_REFUSED';
  constructor(readonly reasons: string[]) {
    super(`bootstrap refused, nothing was changed:\n${reasons.map((r) => `  - ${r}`).join('\n')}`);
  }
}

export class MissingDependencyError extends RegentError {
  override name = 'MissingDependencyError';
  readonly code = 'MISSING_DEPENDENCY';
}

/** The server is not a MariaDB or MySQL version Regent supports. */
export class UnsupportedServerError extends RegentError {
  override name = 'UnsupportedServerError';
  readonly code = 'UNSUPPORTED_SERVER';
}

/** A recovery (failover, switchover, rejoin, repair) was refused before it changed anything. */
export class RecoveryRefused extends RegentError {
  override name = 'RecoveryRefused';
  readonly code = 'RECOVERY_REFUSED';
  override readonly exitCode = EXIT.refusedOrFailed;
}

export class CloneRefused extends RegentError {
  override name = 'CloneRefused';
  readonly code = 'CLONE_REFUSED';
}

/** etcd answered but refused us (user, password, permissions): retrying will not help. */
export class EtcdAccessRefused extends RegentError {
  override name = 'EtcdAccessRefused';
  readonly code = 'ETCD_ACCESS_REFUSED';
}

/** This manager may not act: another one leads (etcd), or it lost its lease. */
export class NotLeaderError extends RegentError {
  override name = 'NotLeaderError';
  readonly code = 'NOT_LEADER';
  override readonly exitCode = EXIT.refusedOrFailed;
}

/** Another process (a CLI command, another manager) is acting on the cluster right now. */
export class ClusterLockedError extends RegentError {
  override name = 'ClusterLockedError';
  readonly code = 'CLUSTER_LOCKED';
  override readonly exitCode = EXIT.refusedOrFailed;
}

/** Text that is not a GTID position or set of the expected flavor. */
export class GtidParseError extends RegentError {
  override name = 'GtidParseError';
  readonly code = 'GTID_PARSE';
  constructor(
    message: string,
    /** The complete text that failed to parse, kept for logs and diagnostics. */
    readonly input: string,
  ) {
    super(message);
  }
}

/**
 * Comparing a MariaDB position with a MySQL set has no meaning; reaching that point means a
 * topology was mixed up, so it fails loudly rather than produce a plausible-looking answer.
 */
export class GtidFlavorMismatch extends RegentError {
  override name = 'GtidFlavorMismatch';
  readonly code = 'GTID_FLAVOR_MISMATCH';
  constructor(
    readonly expected: 'mariadb' | 'mysql',
    readonly actual: 'mariadb' | 'mysql',
  ) {
    super(`GTID flavor mismatch: cannot combine a ${expected} GTID state with a ${actual} one`);
  }
}

/** One step of a recovery plan failed; the message names the step. */
export class StepFailed extends RegentError {
  override name = 'StepFailed';
  readonly code = 'STEP_FAILED';
  override readonly exitCode = EXIT.refusedOrFailed;
}

/** A start refused because the servers reject Regent's credentials: one line, exit 2. */
export class CredentialsRejected extends RegentError {
  override name = 'CredentialsRejected';
  readonly code = 'CREDENTIALS_REJECTED';
}

/** An HTTP API error with its status code. */
/** The data plane process could not be started (its log says why; the message quotes its last line). */
export class DataPlaneStartFailed extends RegentError {
  override name = 'DataPlaneStartFailed';
  readonly code = 'DATA_PLANE';
  override readonly exitCode = EXIT.refusedOrFailed;
}

export class ApiError extends RegentError {
  override name = 'ApiError';
  readonly code = 'API';
  constructor(
    readonly status: number,
    message: string,
    /** More fields for the JSON body beside `error` (say, where the leader of a cluster answers). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export type DbErrorKind = 'refused' | 'timeout' | 'auth' | 'lost' | 'unreachable' | 'privilege' | 'sql';

/** A database failure reduced to what Regent decides on, with a one-line human explanation. */
export class DbError extends RegentError {
  override name = 'DbError';
  readonly code = 'DB';
  constructor(
    readonly kind: DbErrorKind,
    readonly endpoint: string,
    message: string,
    readonly errno?: number,
    /** The driver's or the OS's code (ECONNREFUSED, ER_ACCESS_DENIED_ERROR...). */
    readonly driverCode?: string,
  ) {
    super(`${endpoint}: ${message}`);
  }
}

/** Whether the message of `e` is one clear line meant for the user (no stack trace needed). */
export function isRegentError(e: unknown): e is RegentError {
  return e instanceof RegentError;
}
