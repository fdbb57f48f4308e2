import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { Secret } from '../util/secret.ts';
import {
  configSchema,
  type FailoverSettings,
  type HookSettings,
  type MonitorSettings,
  type RawInstance,
  type ReplicationSettings,
  type RouterSettings,
  type SqlEndpointSettings,
  type SwitchoverSettings,
  type RejoinSettings,
  type RepairSettings,
  type DiscoverySettings,
  type RawConfig,
  type SecretRef,
} from './schema.ts';
import { ConfigError } from '../errors.ts';


export interface Account {
  user: string;
  password?: Secret;
}

export interface InstanceConfig extends RawInstance {
  /** host:port, the identity of an instance everywhere in Regent. */
  id: string;
  name: string;
}

export interface ClusterConfig {
  name: string;
  primary?: string;
  instances: InstanceConfig[];
  accounts: { manager: Account; replication: Account; clone: Account; router: Account };
  /** The SQL endpoint (router.sql) with its files and secrets read. */
  sql?: SqlEndpointConfig;
  monitor: MonitorSettings;
  failover: FailoverSettings;
  replication: ReplicationSettings;
  hooks: HookSettings;
  router: RouterSettings;
  switchover: SwitchoverSettings;
  rejoin: RejoinSettings;
  repair: RepairSettings;
  discovery: DiscoverySettings;
}

export interface SqlEndpointConfig {
  settings: SqlEndpointSettings;
  passwords: Map<string, Secret>;
  tls?: { cert: Buffer; key: Buffer; mode: 'required' | 'optional' };
  backendTls?: { ca?: Buffer; verify: boolean; required: boolean };
}

export interface Config {
  /** Absolute path of the file it came from ('' when built in memory). */
  file: string;
  api?: {
    listen: string;
    token?: Secret;
    /** PEM contents, read at load time; cert and key only where the manager serves https. */
    tls?: { cert?: Buffer; key?: Buffer; ca?: Buffer };
  };
  coordination:
    | { backend: 'local' }
    | {
        backend: 'etcd';
        endpoints: string[];
        prefix: string;
        leaseTtlSeconds: number;
        primaryLease: boolean;
        /** PEM contents, read at load time. */
        tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
        auth?: { user: string; password: Secret };
      };
  stateDir: string;
  /** Pipe processes of the router data plane (0: the manager pipes itself). */
  routerProcesses: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  clusters: ClusterConfig[];
  /** The top-level accounts (what a cluster without its own uses): a crawl for `cluster add` logs in with these. */
  defaultAccounts: { manager: Account };
}

export function instanceId(host: string, port: number): string {
  return `${host}:${port}`;
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  const { file, text } = readConfigFile(path);
  return parseConfigText(text, file, env);
}

/** A configuration file's absolute path and text; a file that cannot be read is a ConfigError naming why. */
export function readConfigFile(path: string): { file: string; text: string } {
  const file = resolve(path);
  try {
    return { file, text: readFileSync(file, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(e);
    throw new ConfigError(`config ${file}: cannot read it (${why}); pass an existing file with --config`);
  }
}

export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  return configFromDocument(readConfigDocument(text, file), file, env);
}

/** The YAML of a configuration file as plain data (no validation yet). */
export function readConfigDocument(text: string, file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const pos = e.linePos?.[0];
      const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
      throw new ConfigError(`config ${file}: not valid YAML${where}: ${e.message.split('\n')[0]}`);
    }
    throw e;
  }
  if (doc === null || doc === undefined) throw new ConfigError(`config ${file}: the file is empty; it needs at least a "clusters:" list`);
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config ${file}: expected a mapping at the top level (manager:, credentials:, clusters:)`);
  return doc as Record<string, unknown>;
}

/**
 * Validates a configuration document and resolves what it refers to (secrets, PEM files relative
 * to `file`). The document may be the file's own or the file with clusters registered at run
 * time merged in (src/inventory).
 */
export function configFromDocument(doc: Record<string, unknown>, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(doc, { reportInput: true });
  if (!parsed.success) throw new ConfigError(`config ${file}: ${describeIssues(parsed.error.issues)}`);
  const raw = parsed.data;
  const baseDir = file ? dirname(file) : process.cwd();

  const secret = (ref: SecretRef | undefined, field: string): Secret | undefined => resolveSecret(ref, field, baseDir, env, file);
  const account = (
    cluster: (typeof raw.clusters)[number],
    index: number,
    role: 'manager' | 'replication' | 'clone' | 'router',
    defaultUser: string,
  ): Account => {
    const own = cluster.credentials?.[role];
    const shared = raw.credentials[role];
    const chosen = own ?? shared;
    const field = own ? `clusters[${index}].credentials.${role}` : `credentials.${role}`;
    if (!chosen) return { user: defaultUser };
    return { user: chosen.user, password: secret(chosen.password, `${field}.password`) };
  };

  const names = new Set<string>();
  const seenInstances = new Map<string, string>();
  const clusters = raw.clusters.map((c, ci): ClusterConfig => {
    if (names.has(c.name)) throw new ConfigError(`config ${file}: clusters[${ci}].name: "${c.name}" is used twice; give each cluster its own name`);
    names.add(c.name);
    const instances = c.instances.map((inst, ii): InstanceConfig => {
      const id = instanceId(inst.host, inst.port);
      const other = seenInstances.get(id);
      if (other)
        throw new ConfigError(
          `config ${file}: clusters[${ci}].instances[${ii}]: ${id} is already listed (${other}); an instance belongs to one cluster once`,
        );
      seenInstances.set(id, `clusters[${ci}] "${c.name}"`);
      return { ...inst, id, name: inst.name ?? id };
    });
    if (c.primary && !instances.some((i) => i.id === c.primary))
      throw new ConfigError(
        `config ${file}: clusters[${ci}].primary: ${c.primary} is not one of the cluster's instances (${instances.map((i) => i.id).join(', ')})`,
      );
    return {
      name: c.name,
      primary: c.primary,
      instances,
      accounts: (() => {
        const manager = account(c, ci, 'manager', 'regent');
        const hasClone = Boolean(c.credentials?.clone ?? raw.credentials.clone);
        const hasRouter = Boolean(c.credentials?.router ?? raw.credentials.router);
        return { manager, replication: account(c, ci, 'replication', 'repl'), clone: hasClone ? account(c, ci, 'clone', 'admin') : manager, router: hasRouter ? account(c, ci, 'router', 'regent_router') : manager };
      })(),
      sql: c.router.sql && sqlEndpoint(c.router.sql, `clusters[${ci}].router.sql`, baseDir, file, secret),
      monitor: c.monitor,
      failover: c.failover,
      replication: c.replication,
      hooks: c.hooks,
      router: c.router,
      switchover: c.switchover,
      rejoin: c.rejoin,
      repair: c.repair,
      discovery: c.discovery,
    };
  });

  const api = raw.manager.api && { listen: raw.manager.api.listen, token: secret(raw.manager.api.token, 'manager.api.token'), tls: apiTls(raw.manager.api.tls, baseDir, file) };
  const sharedManager = raw.credentials.manager;
  const defaultAccounts = { manager: sharedManager ? { user: sharedManager.user, password: secret(sharedManager.password, 'credentials.manager.password') } : { user: 'regent' } };
  return { file, api, coordination: coordination(raw.manager.coordination, baseDir, file, secret), stateDir: resolve(baseDir, raw.manager.stateDir), logLevel: raw.manager.logLevel, routerProcesses: routerProcesses(raw.manager.routerProcesses), clusters, defaultAccounts };
}

/** manager.api.tls: the PEM files read now, so a wrong path fails at load with the field named. */
function apiTls(tls: NonNullable<RawConfig['manager']['api']>['tls'], baseDir: string, file: string): NonNullable<Config['api']>['tls'] {
  if (!tls) return undefined;
  const field = 'manager.api.tls';
  if (Boolean(tls.cert) !== Boolean(tls.key)) throw new ConfigError(`config ${file}: ${field}: set cert and key together (the manager serves https with both)`);
  if (!tls.cert && !tls.ca) throw new ConfigError(`config ${file}: ${field}: set cert and key (the manager serves https), ca (clients verify it), or both`);
  return { cert: readPem(tls.cert, `${field}.cert`, baseDir, file), key: readPem(tls.key, `${field}.key`, baseDir, file), ca: readPem(tls.ca, `${field}.ca`, baseDir, file) };
}

function readPem(path: string | undefined, field: string, baseDir: string, file: string): Buffer | undefined {
  if (path === undefined) return undefined;
  const full = resolve(baseDir, path);
  let pem: Buffer;
  try {
    pem = readFileSync(full);
  } catch (e) {
    throw new ConfigError(`config ${file}: ${field}: cannot read ${full} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  // A DER file or a wrong path to some other file would only fail at the first TLS handshake.
  if (!pem.includes('-----BEGIN ')) throw new ConfigError(`config ${file}: ${field}: ${full} is not a PEM file (no -----BEGIN line)`);
  return pem;
}

function resolveSecret(ref: SecretRef | undefined, field: string, baseDir: string, env: NodeJS.ProcessEnv, file: string): Secret | undefined {
  if (ref === undefined) return undefined;
  if (typeof ref === 'string') return new Secret(ref, `inline ${field}`);
  if ('env' in ref) {
    const v = env[ref.env];
    if (v === undefined)
      throw new ConfigError(`config ${file}: ${field}: environment variable ${ref.env} is not set; export it or use {file: PATH}`);
    return new Secret(v, `env ${ref.env}`);
  }
  const path = resolve(baseDir, ref.file);
  try {
    return new Secret(readFileSync(path, 'utf8').replace(/\r?\n$/, ''), `file ${path}`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new ConfigError(`config ${file}: ${field}: cannot read password file ${path} (${code}); create it or fix the path`);
  }
}

/** zod issues as one line: the first issue in full, then how many more there are. */
function describeIssues(issues: z.core.$ZodIssue[]): string {
  // A misspelt key also makes the real key "missing": report the spelling first, it explains both.
  const first = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
  if (!first) return 'invalid';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  // Never echo what was typed into a password field, even when it is malformed.
  const sensitive = first.path.some((p) => p === 'password');
  return `${formatPath(first.path)}: ${explainIssue(first, sensitive)}${more}`;
}

function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function explainIssue(issue: z.core.$ZodIssue, sensitive: boolean): string {
  const describeValue = (v: unknown): string => (sensitive ? typeOf(v) : describeAnyValue(v));
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; remove ${issue.keys.length > 1 ? 'them' : 'it'} or check the spelling (docs/config-reference.md lists every key)`;
    case 'invalid_type':
      return issue.input === undefined ? `required (${issue.expected}) but missing; add it` : `expected ${issue.expected}, got ${describeValue(issue.input)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(issue.input)}`;
    case 'too_small':
      return issue.origin === 'array' ? `needs at least ${String(issue.minimum)} entr${issue.minimum === 1 ? 'y' : 'ies'}` : `must be at least ${String(issue.minimum)}, got ${describeValue(issue.input)}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}, got ${describeValue(issue.input)}`;
    case 'invalid_union':
      return `expected a string, {env: NAME} or {file: PATH}, got ${describeValue(issue.input)}`;
    default:
      return issue.message;
  }
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;
}

function describeAnyValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return `${typeof v} ${String(v)}`;
}

/**
 * `auto`: leave two cores to the database and the manager, use the rest (up to 4) for piping. On
 * two cores, separate pipe processes measured slower than piping on the manager's event loop at 32
 * connections (they lose its batching and compete with everything else): see docs/benchmarks.md.
 */
function routerProcesses(setting: number | 'auto'): number {
  return setting === 'auto' ? autoRouterProcesses() : setting;
}

/** What `routerProcesses: auto` means on this machine. */
export function autoRouterProcesses(): number {
  return Math.max(0, Math.min(4, availableParallelism() - 2));
}

function sqlEndpoint(
  raw: SqlEndpointSettings,
  field: string,
  baseDir: string,
  file: string,
  secret: (ref: SecretRef | undefined, field: string) => Secret | undefined,
): SqlEndpointConfig {
  const pem = (path: string, key: string): Buffer => {
    const full = resolve(baseDir, path);
    try {
      return readFileSync(full);
    } catch (e) {
      throw new ConfigError(`config ${file}: ${field}.${key}: cannot read ${full} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  const passwords = new Map<string, Secret>();
  for (const [user, ref] of Object.entries(raw.passwords)) passwords.set(user, secret(ref, `${field}.passwords.${user}`)!);
  return {
    settings: raw,
    passwords,
    tls: raw.tls && { cert: pem(raw.tls.cert, 'tls.cert'), key: pem(raw.tls.key, 'tls.key'), mode: raw.tls.mode },
    backendTls: raw.backendTls && { ca: raw.backendTls.ca ? pem(raw.backendTls.ca, 'backendTls.ca') : undefined, verify: raw.backendTls.verify, required: raw.backendTls.required },
  };
}

function coordination(
  c: RawConfig['manager']['coordination'],
  baseDir: string,
  file: string,
  secret: (ref: SecretRef | undefined, field: string) => Secret | undefined,
): Config['coordination'] {
  if (c.backend === 'local') return c;
  const field = 'manager.coordination';
  const https = c.endpoints.filter((e) => e.startsWith('https://'));
  if (c.tls && https.length !== c.endpoints.length)
    throw new ConfigError(`config ${file}: ${field}.endpoints: with tls set, every endpoint must be https:// (${c.endpoints.filter((e) => !e.startsWith('https://')).join(', ')} is not)`);
  if (!c.tls && https.length > 0) throw new ConfigError(`config ${file}: ${field}.tls: the endpoints are https://, so set tls.ca (the CA that signed etcd's certificates)`);
  if (c.tls && Boolean(c.tls.cert) !== Boolean(c.tls.key)) throw new ConfigError(`config ${file}: ${field}.tls: set cert and key together (a client certificate needs its key)`);
  const pem = (path: string | undefined, key: string): Buffer | undefined => {
    if (path === undefined) return undefined;
    const full = resolve(baseDir, path);
    try {
      return readFileSync(full);
    } catch (e) {
      throw new ConfigError(`config ${file}: ${field}.tls.${key}: cannot read ${full} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  const { tls, auth, ...rest } = c;
  return {
    ...rest,
    tls: tls && { ca: pem(tls.ca, 'ca')!, cert: pem(tls.cert, 'cert'), key: pem(tls.key, 'key') },
    auth: auth && { user: auth.user, password: secret(auth.password, `${field}.auth.password`)! },
  };
}
