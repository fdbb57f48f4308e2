import type { InstanceObservation } from '../monitor/observation.ts';
import type { Logger } from '../util/log.ts';

/**
 * Credentials the servers reject: at start, when every instance of a cluster refuses the manager
 * account, no amount of waiting fixes it, so `regent run` stops with one line (exit 2) instead of
 * running blind. Later (a password rotated on the servers but not in the config), the manager keeps
 * running, since it still routes and the cluster still serves, but says so loudly: an error line
 * at once and every `repeatMs` while it lasts, and the per-instance gauge
 * regent_instance_credentials_rejected (src/api/metrics.ts) for alerting.
 */

/** What this module reads of a ClusterSupervisor (structural, so tests can hand in plain objects). */
export interface WatchedCluster {
  cluster: { name: string; accounts: { manager: { user: string; password?: { source: string } } } };
  monitor: { probers: Map<string, { latest: InstanceObservation }> };
}

export { CredentialsRejected } from '../errors.ts';
import { CredentialsRejected } from '../errors.ts';

export type CredentialsVerdict = 'pending' | 'accepted' | 'rejected';

/**
 * accepted: some instance answered with anything but an authentication error (a refused connection
 * or a timeout says nothing about credentials); rejected: every instance was probed and refused
 * the login; pending: not known yet.
 */
export function credentialsVerdict(c: WatchedCluster): CredentialsVerdict {
  const latest = [...c.monitor.probers.values()].map((p) => p.latest);
  if (latest.some((o) => o.at > 0 && o.error?.kind !== 'auth')) return 'accepted';
  if (latest.length > 0 && latest.every((o) => o.at > 0 && o.error?.kind === 'auth')) return 'rejected';
  return 'pending';
}

/** The instances whose last probe was refused for authentication. */
export function rejectingInstances(c: WatchedCluster): string[] {
  return [...c.monitor.probers.entries()].filter(([, p]) => p.latest.error?.kind === 'auth').map(([id]) => id);
}

function fixFor(c: WatchedCluster): string {
  const m = c.cluster.accounts.manager;
  return `set the account's password in credentials.manager (read from ${m.password?.source ?? 'nowhere: none is configured'}), or create the account with the statements \`regent grants\` prints`;
}

/**
 * Waits for the first probe round (until every cluster's verdict is known, at most `timeoutMs`) and
 * throws CredentialsRejected naming the clusters whose every instance refused the manager account.
 */
export async function refuseRejectedCredentials(clusters: Iterable<WatchedCluster>, timeoutMs: number): Promise<void> {
  const all = [...clusters];
  const deadline = Date.now() + timeoutMs;
  while (all.some((c) => credentialsVerdict(c) === 'pending') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const rejected = all.filter((c) => credentialsVerdict(c) === 'rejected');
  if (rejected.length === 0) return;
  const c = rejected[0]!;
  const others = rejected.length > 1 ? ` (so do clusters ${rejected.slice(1).map((x) => x.cluster.name).join(', ')})` : '';
  throw new CredentialsRejected(
    `cluster ${c.cluster.name}: every instance rejects the manager account '${c.cluster.accounts.manager.user}' (access denied: wrong password, or no such account for this host)${others}; ${fixFor(c)}. The manager did not start.`,
  );
}

/** After the start: an error line when instances start rejecting the credentials, repeated while they do. */
export class CredentialsWatch {
  #timer?: NodeJS.Timeout;
  /** Per cluster: the rejecting instances as last logged, and when. */
  #logged = new Map<string, { key: string; at: number }>();

  constructor(
    private readonly clusters: Iterable<WatchedCluster>,
    private readonly log: Logger,
    private readonly opts: { checkMs?: number; repeatMs?: number } = {},
  ) {}

  start(): this {
    this.#timer = setInterval(() => this.check(), this.opts.checkMs ?? 1000);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** One pass (the timer calls it; tests call it directly). */
  check(now = Date.now()): void {
    const repeatMs = this.opts.repeatMs ?? 60000;
    for (const c of this.clusters) {
      const name = c.cluster.name;
      const rejecting = rejectingInstances(c);
      const key = rejecting.join(',');
      const last = this.#logged.get(name);
      if (rejecting.length === 0) {
        if (last) {
          this.#logged.delete(name);
          this.log.info({ event: 'credentials_accepted', cluster: name }, `cluster ${name}: every instance accepts the manager account again`);
        }
        continue;
      }
      if (last && last.key === key && now - last.at < repeatMs) continue;
      this.#logged.set(name, { key, at: now });
      const total = c.monitor.probers.size;
      const who = rejecting.length === total ? `every instance (${total})` : `${rejecting.length} of ${total} instances (${key})`;
      this.log.error(
        { event: 'credentials_rejected', cluster: name, instances: rejecting, user: c.cluster.accounts.manager.user },
        `cluster ${name}: ${who} reject${rejecting.length === total || rejecting.length === 1 ? 's' : ''} the manager account '${c.cluster.accounts.manager.user}': Regent cannot see ${rejecting.length === total ? 'the cluster, nor fail it over' : 'them'}; ${fixFor(c)}`,
      );
    }
  }
}
