/** Input Regent cannot work with (bad config, wrong credentials, nothing reachable): exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Error classes whose message is already one clear line for the user (no stack trace needed). */
export const USER_FACING_ERRORS = new Set([
  'UsageError',
  'ConfigError',
  'SandboxError',
  'BootstrapRefused',
  'DbError',
  'MissingDependencyError',
  'UnsupportedServerError',
  'RecoveryRefused',
  'CommanderError',
  'CloneRefused',
  'EtcdAccessRefused',
  'CredentialsRejected',
]);
