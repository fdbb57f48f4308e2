import type { ClusterState, Coordinator } from '../coordination/coordinator.ts';
import type { Logger } from '../util/log.ts';
import { decisionFromState, decisionToState, emptyDecision, type Decision } from './decision.ts';

/** What changed, for subscribers that act on the change itself (the router closes connections on a fence). */
export type DecisionChange =
  | { verb: 'adopt'; primary: string; evidence: string }
  | { verb: 'hold'; kind: 'failover' | 'switchover'; planId: string }
  | { verb: 'fence'; instance: string; reason: string }
  | { verb: 'promote'; primary: string; previous?: string; kind: 'failover' | 'switchover' }
  | { verb: 'roll-back'; primary?: string; reason: string }
  | { verb: 'recovery-failed'; planId: string }
  | { verb: 'rejoined'; instance: string }
  | { verb: 'errant'; instance: string; errant?: string }
  | { verb: 'maintenance'; instance: string; until?: number }
  | { verb: 'acknowledge' }
  | { verb: 'follow' };

export type DecisionSubscriber = (decision: Decision, change: DecisionChange) => void | Promise<void>;

/**
 * The one owner of what Regent decided about a cluster. Every verb changes the decision in memory,
 * tells the subscribers (the router first: a fence must close connections before the promotion
 * goes on), and persists through the coordinator when this process may write shared state (the
 * acting leader). Nothing else assigns the decided primary.
 *
 * Persisting applies the same change to the freshly read shared state rather than writing memory
 * over it: a CLI command may have changed maintenance or acknowledged a recovery meanwhile.
 */
export class DecisionRecord {
  #d: Decision;
  #subscribers: DecisionSubscriber[] = [];
  /** Bumped by every local change: a shared-state read that started before one is stale. */
  #version = 0;
  #loaded = false;

  constructor(
    readonly cluster: string,
    private readonly coordinator: Coordinator,
    private readonly log: Logger,
    /** Whether this process writes shared state now (the leader, and not an observe-only proxy). */
    private readonly mayPersist: () => boolean,
  ) {
    this.#d = emptyDecision(cluster);
  }

  /** The shared state was read at least once, or this record decided something itself. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** The current decision; a new object after every change, never mutated. */
  get snapshot(): Decision {
    return this.#d;
  }

  subscribe(s: DecisionSubscriber): () => void {
    this.#subscribers.push(s);
    return () => {
      this.#subscribers = this.#subscribers.filter((x) => x !== s);
    };
  }

  /** The primary seen in the topology replaces the decided one (a person changed it, or no record yet). */
  adopt(primary: string, evidence: string): Promise<void> {
    const now = Date.now();
    return this.#change({ verb: 'adopt', primary, evidence }, (d) => ({ ...d, decidedPrimary: primary, decidedAt: now }));
  }

  /** A primary change starts: writers wait (a switchover's first step). */
  hold(kind: 'failover' | 'switchover', planId: string): Promise<void> {
    const since = Date.now();
    return this.#change({ verb: 'hold', kind, planId }, (d) => ({ ...d, changing: { kind, planId, since } }), { persist: false });
  }

  /**
   * Nobody may write to `instance` any more: routers stop sending it writes and close what they
   * have open to it (awaited), and it is never adopted as primary again until it rejoins. With
   * `change`, a primary change starts at the same moment (the first step of a failover).
   */
  fence(instance: string, reason: string, change?: { kind: 'failover' | 'switchover'; planId: string }): Promise<void> {
    const since = Date.now();
    return this.#change({ verb: 'fence', instance, reason }, (d) => ({
      ...d,
      fenced: new Set([...d.fenced, instance]),
      changing: change ? { ...change, since } : d.changing,
    }));
  }

  /**
   * `primary` takes writes now. A failover leaves the old primary fenced with the common point
   * its rejoin starts from; a switchover leaves neither fenced (the old one replicates already).
   */
  promote(primary: string, opts: { kind: 'failover'; planId: string; oldPrimary: string; commonPoint: string } | { kind: 'switchover'; planId: string; oldPrimary: string; writePauseMs: number }): Promise<void> {
    const now = Date.now();
    return this.#change({ verb: 'promote', primary, previous: opts.oldPrimary, kind: opts.kind }, (d) => {
      const fenced = new Set(d.fenced);
      fenced.delete(primary);
      if (opts.kind === 'failover') {
        fenced.add(opts.oldPrimary);
        return {
          ...d,
          decidedPrimary: primary,
          decidedAt: now,
          changing: undefined,
          fenced,
          commonPoints: new Map([...d.commonPoints, [opts.oldPrimary, opts.commonPoint]]),
          lastRecovery: { planId: opts.planId, at: now, kind: 'failover', oldPrimary: opts.oldPrimary, newPrimary: primary, outcome: 'success' },
          acknowledgedAt: undefined,
        };
      }
      fenced.delete(opts.oldPrimary);
      return {
        ...d,
        decidedPrimary: primary,
        decidedAt: now,
        changing: undefined,
        fenced,
        lastSwitchover: { planId: opts.planId, at: now, oldPrimary: opts.oldPrimary, newPrimary: primary, writePauseMs: opts.writePauseMs },
      };
    });
  }

  /**
   * A primary change ended without a new primary: writers follow `primary` again (the old one, or
   * whoever was decided before) and the instances this change fenced are no longer fenced.
   */
  rollBack(reason: string, opts: { primary?: string; unfence?: string[] } = {}): Promise<void> {
    return this.#change({ verb: 'roll-back', primary: opts.primary, reason }, (d) => {
      const fenced = new Set(d.fenced);
      for (const id of opts.unfence ?? []) fenced.delete(id);
      return { ...d, changing: undefined, fenced, decidedPrimary: opts.primary ?? d.decidedPrimary };
    });
  }

  /**
   * A failover ended in failure; it counts for anti-flapping all the same. Before the promotion,
   * writers follow the decided primary again and `unfence` lists what the failover itself fenced;
   * after it, `promoted` takes writes and the old primary stays fenced.
   */
  failed(opts: { planId: string; oldPrimary: string; promoted?: string; commonPoint?: string; unfence?: string[] }): Promise<void> {
    const now = Date.now();
    return this.#change({ verb: 'recovery-failed', planId: opts.planId }, (d) => {
      const lastRecovery = { planId: opts.planId, at: now, kind: 'failover', oldPrimary: opts.oldPrimary, newPrimary: opts.promoted, outcome: 'failed' };
      if (!opts.promoted) {
        const fenced = new Set(d.fenced);
        for (const id of opts.unfence ?? []) fenced.delete(id);
        return { ...d, changing: undefined, fenced, lastRecovery };
      }
      const fenced = new Set([...d.fenced, opts.oldPrimary]);
      fenced.delete(opts.promoted);
      const commonPoints = opts.commonPoint !== undefined ? new Map([...d.commonPoints, [opts.oldPrimary, opts.commonPoint]]) : d.commonPoints;
      return { ...d, changing: undefined, decidedPrimary: opts.promoted, decidedAt: now, fenced, commonPoints, lastRecovery };
    });
  }

  /** `instance` replicates from the decided primary again: not fenced, nothing errant, no common point. */
  rejoined(instance: string): Promise<void> {
    return this.#change({ verb: 'rejoined', instance }, (d) => {
      const fenced = new Set(d.fenced);
      fenced.delete(instance);
      const errant = new Map(d.errant);
      errant.delete(instance);
      const commonPoints = new Map(d.commonPoints);
      commonPoints.delete(instance);
      return { ...d, fenced, errant, commonPoints };
    });
  }

  /** Errant transactions found on `instance` (undefined: it has none any more). */
  noteErrant(instance: string, errant: string | undefined): Promise<void> {
    if (this.#d.errant.get(instance) === errant) return Promise.resolve();
    return this.#change({ verb: 'errant', instance, errant }, (d) => {
      const next = new Map(d.errant);
      if (errant === undefined) next.delete(instance);
      else next.set(instance, errant);
      return { ...d, errant: next };
    });
  }

  /** Puts `instance` in maintenance until the given time, or takes it out (undefined). */
  setMaintenance(instance: string, until: number | undefined): Promise<void> {
    return this.#change({ verb: 'maintenance', instance, until }, (d) => {
      const m = new Map(d.maintenance);
      if (until === undefined) m.delete(instance);
      else m.set(instance, until);
      return { ...d, maintenance: m };
    });
  }

  /** A person saw the last recovery: automatic failover is allowed again. */
  acknowledge(): Promise<void> {
    const now = Date.now();
    return this.#change({ verb: 'acknowledge' }, (d) => ({ ...d, acknowledgedAt: now }));
  }

  /**
   * Takes on the shared state (at start, when becoming leader, and periodically: a follower or a
   * standalone proxy follows the acting manager; the leader sees what a CLI command changed).
   * Subscribers hear of it only when something they route by changed.
   */
  async follow(opts: { settle?: boolean } = {}): Promise<void> {
    const version = this.#version;
    const state = await this.coordinator.getClusterState(this.cluster);
    if (version !== this.#version) return; // a local change happened meanwhile; the next read catches up
    // `settle`: another manager's primary change this one held writes for is over; the stored
    // decision (its outcome) and the end of the hold reach the routers together, so they never
    // route to the old primary in between.
    const next = { ...decisionFromState(this.cluster, state), changing: opts.settle ? undefined : this.#d.changing };
    const before = this.#d;
    this.#d = next;
    const first = !this.#loaded;
    this.#loaded = true;
    if (first) {
      await this.#notify({ verb: 'follow' });
      return;
    }
    if (routingKey(before) !== routingKey(next)) await this.#notify({ verb: 'follow' });
  }

  async #change(change: DecisionChange, apply: (d: Decision) => Decision, opts: { persist?: boolean } = {}): Promise<void> {
    this.#version++;
    this.#loaded = true;
    this.#d = apply(this.#d);
    this.log.debug({ event: 'decision_changed', cluster: this.cluster, change });
    await this.#notify(change);
    if (opts.persist === false || !this.mayPersist()) return;
    const stored = await this.coordinator.updateClusterState(this.cluster, (s: ClusterState) => decisionToState(apply(decisionFromState(this.cluster, s))));
    // The stored result also carries what others changed meanwhile; what is in flight stays ours.
    this.#d = { ...decisionFromState(this.cluster, stored), changing: this.#d.changing };
  }

  async #notify(change: DecisionChange): Promise<void> {
    const d = this.#d;
    await Promise.all(
      this.#subscribers.map(async (s) => {
        try {
          await s(d, change);
        } catch (e) {
          this.log.error({ event: 'decision_subscriber_failed', cluster: this.cluster, verb: change.verb, err: (e as Error).message }, `a subscriber of ${this.cluster}'s decisions failed`);
        }
      }),
    );
  }
}

/** What routers and discovery follow: a change here must reach them. */
function routingKey(d: Decision): string {
  return JSON.stringify([d.decidedPrimary, d.decidedAt, [...d.fenced].sort(), [...d.maintenance].sort(), d.changing?.planId]);
}
