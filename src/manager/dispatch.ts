import { analyzeCluster, type Analysis } from '../analysis/analyze.ts';
import { PROBLEMS, problemKey, type ActionName, type Problem } from '../analysis/problems.ts';
import type { AntiFlapping } from '../decision/decision.ts';
import type { ActionOutcome, ClusterContext } from './cluster-context.ts';
import type { ProblemTracker } from './problem-tracker.ts';

/** How an action may run on one cluster right now (from the config and the decision). */
export interface ActionPolicy {
  /** Whether it may run at all: true, or why not (loud: worth an error line, as a switched-off failover is). */
  enabled: true | { why: string; loud: boolean };
  /** Only the acting leader runs it (a safety fence also runs on a manager that lost its coordination). */
  needsLeader: boolean;
  /** The problem must have stood this long before the action runs (ms). */
  afterMs: number;
  /** Wait between two attempts on the same problem (ms). */
  retryMs: number;
  /** Failover only: the anti-flapping verdict. */
  antiFlapping?: AntiFlapping;
}

/** One action: when it may run (policy), under which lock, what to look at again first, and the work. */
export interface ActionSpec {
  policy(ctx: ClusterContext, problem: Problem): ActionPolicy;
  /** 'cluster': the coordinator's lock too (one actor per cluster); 'local': this process only. */
  lock: 'cluster' | 'local';
  /** Instances to probe again before deciding that the problem still stands. */
  reprobe(ctx: ClusterContext, problem: Problem): string[];
  run(ctx: ClusterContext, problem: Problem, analysis: Analysis): Promise<ActionOutcome>;
}

export interface GateInput {
  policy: ActionPolicy;
  /** This manager is the acting leader (and not an observe-only proxy). */
  leader: boolean;
  /** The problem's instance is in maintenance. */
  inMaintenance: boolean;
  problemAgeMs: number;
  /** When this action was last tried on this problem (ms since epoch). */
  lastAttemptAt?: number;
  now: number;
}

export type Verdict = { run: true } | { run: false; why: string; loud: boolean };

/**
 * Whether an action may run now, the gates in a fixed order: leadership, maintenance, enabled,
 * anti-flapping, then how long the problem stood and when it was last tried. Pure.
 */
export function gate(i: GateInput): Verdict {
  const { policy } = i;
  if (policy.needsLeader && !i.leader) return { run: false, why: 'this manager is not the acting leader', loud: false };
  if (i.inMaintenance) return { run: false, why: 'the instance is in maintenance', loud: false };
  if (policy.enabled !== true) return { run: false, why: policy.enabled.why, loud: policy.enabled.loud };
  if (policy.antiFlapping?.blockedUntil !== undefined) return { run: false, why: policy.antiFlapping.reason ?? 'blocked by anti-flapping', loud: true };
  if (i.problemAgeMs < policy.afterMs) return { run: false, why: `waiting ${policy.afterMs - i.problemAgeMs} ms more before acting`, loud: false };
  if (i.lastAttemptAt !== undefined && i.now - i.lastAttemptAt < policy.retryMs) return { run: false, why: `tried ${i.now - i.lastAttemptAt} ms ago; next attempt after ${policy.retryMs} ms`, loud: false };
  return { run: true };
}

export interface DispatchChoice {
  /** The problem whose action runs now, if any. */
  run?: Problem;
  /** Problems with an action that does not run, and why. */
  held: { problem: Problem; why: string; loud: boolean }[];
}

/**
 * Picks the one action to run now: problems in priority order (the registry's), the first whose
 * gate opens wins. A problem that holds lower ones (a dead primary) stops the search even when its
 * own action is held back. Pure; `gateOf` returns the gate input of a problem with an action.
 */
export function chooseAction(problems: Problem[], gateOf: (p: Problem) => GateInput): DispatchChoice {
  const held: DispatchChoice['held'] = [];
  const ordered = problems.map((p, i) => ({ p, i })).sort((a, b) => PROBLEMS[b.p.code].priority - PROBLEMS[a.p.code].priority || a.i - b.i);
  for (const { p } of ordered) {
    const spec = PROBLEMS[p.code];
    if (spec.action) {
      const v = gate(gateOf(p));
      if (v.run) return { run: p, held };
      held.push({ problem: p, why: v.why, loud: v.loud });
    }
    if (spec.holdsLower) break;
  }
  return { held };
}

/**
 * The one gate every automatic action passes, fences included: priority, leadership, maintenance,
 * enabled, anti-flapping or cooldown, the cluster lock, a fresh look (re-probe and re-analyse: is
 * the problem still there?), then the action itself, reported as an `action` event.
 */
export class Dispatcher {
  #acting = false;
  #attempts = new Map<string, number>();

  constructor(
    private readonly ctx: ClusterContext,
    private readonly tracker: ProblemTracker,
    private readonly actions: Record<ActionName, ActionSpec>,
    /** Whether this manager acts now (leader, and nothing unfinished left to resume). */
    private readonly leader: () => boolean,
    /** Called when an action ends, so the cluster is judged again at once. */
    private readonly onIdle: () => void,
  ) {}

  /** An action runs on this cluster right now (in this process). */
  get acting(): boolean {
    return this.#acting;
  }

  gateInput(p: Problem, now = Date.now()): GateInput {
    const action = PROBLEMS[p.code].action!;
    const until = p.instance ? this.ctx.decision.snapshot.maintenance.get(p.instance) : undefined;
    return {
      policy: this.actions[action].policy(this.ctx, p),
      leader: this.leader(),
      inMaintenance: until !== undefined && until > now,
      problemAgeMs: this.tracker.ageOf(p, now),
      lastAttemptAt: this.#attempts.get(`${action}|${p.instance ?? ''}`),
      now,
    };
  }

  async dispatch(analysis: Analysis): Promise<void> {
    if (this.#acting) return;
    const choice = chooseAction(analysis.problems, (p) => this.gateInput(p));
    for (const h of choice.held) if (h.loud) this.ctx.logBlocked(`${PROBLEMS[h.problem.code].action} for ${h.problem.code}${h.problem.instance ? ` on ${h.problem.instance}` : ''} held: ${h.why}`);
    const p = choice.run;
    if (!p) return;
    const name = PROBLEMS[p.code].action!;
    const spec = this.actions[name];
    this.#attempts.set(`${name}|${p.instance ?? ''}`, Date.now());
    const started = Date.now();
    const result = await this.exclusively(spec.lock, `${name} (automatic: ${p.code})`, async (): Promise<ActionOutcome | 'stale'> => {
      // Is it still there? Observations may be a probe interval old, and another action (or a
      // person) may have changed things since this analysis.
      await this.ctx.monitor.reprobe(spec.reprobe(this.ctx, p));
      const fresh = analyzeCluster(this.ctx.view());
      const still = fresh.problems.find((x) => problemKey(x) === problemKey(p));
      if (!still) return 'stale';
      return spec.run(this.ctx, still, fresh);
    });
    const outcome = result === 'stale' ? { outcome: 'stale' as const, detail: 'gone after a fresh look' } : 'refusal' in result ? { outcome: 'refused' as const, detail: result.refusal } : result;
    if (outcome.outcome === 'refused') this.ctx.logBlocked(`${name} for ${p.code}${p.instance ? ` on ${p.instance}` : ''} not done: ${outcome.detail}`);
    this.ctx.events.emit('action', { action: name, code: p.code, instance: p.instance, outcome: outcome.outcome, detail: outcome.detail, durationMs: Date.now() - started });
  }

  /**
   * Runs one action on this cluster at a time: the in-process flag stops a second analysis from
   * starting one, the coordinator's lock stops another process (a CLI, another manager). A local
   * lock is for the few safety actions that must run when the coordinator cannot be reached.
   */
  async exclusively<T>(lock: 'cluster' | 'local', what: string, fn: () => Promise<T>): Promise<T | { refusal: string }> {
    if (this.#acting) return { refusal: 'another action is under way on this cluster' };
    this.#acting = true;
    // Fast probing is for confirming a dead primary; an action probes what it needs itself (with
    // it on, every instance of every failing cluster was probed each 20 ms for the whole recovery).
    this.ctx.monitor.setSuspecting(false);
    let release: (() => Promise<void>) | undefined;
    try {
      if (lock === 'cluster') release = await this.ctx.coordinator.lockCluster(this.ctx.cluster.name, what);
      return await fn();
    } catch (e) {
      return { refusal: (e as Error).message };
    } finally {
      await release?.().catch(() => undefined);
      this.#acting = false;
      this.onIdle();
    }
  }
}
