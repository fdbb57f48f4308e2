import { problemKey, type Problem } from '../analysis/problems.ts';

export interface ProblemChanges {
  started: Problem[];
  resolved: Problem[];
}

/**
 * Which problems stand and since when, across analyses: a problem "starts" the first analysis that
 * finds it and "resolves" the first that does not. Repairs wait until a problem has stood long
 * enough (repair.afterSeconds), so a DBA who stopped replication on purpose has time to say so.
 */
export class ProblemTracker {
  #active = new Map<string, Problem>();
  #since = new Map<string, number>();

  /** Takes the problems of a new analysis; returns what started and what resolved. */
  update(problems: Problem[], now = Date.now()): ProblemChanges {
    const current = new Map(problems.map((p) => [problemKey(p), p]));
    const started: Problem[] = [];
    const resolved: Problem[] = [];
    for (const [k, p] of current) {
      if (!this.#since.has(k)) this.#since.set(k, now);
      if (!this.#active.has(k)) started.push(p);
    }
    for (const [k, p] of this.#active) if (!current.has(k)) resolved.push(p);
    for (const k of [...this.#since.keys()]) if (!current.has(k)) this.#since.delete(k);
    this.#active = current;
    return { started, resolved };
  }

  /** How long a problem has been seen without interruption (ms; 0 when not seen). */
  ageOf(p: Pick<Problem, 'code' | 'instance'>, now = Date.now()): number {
    const since = this.#since.get(problemKey(p));
    return since === undefined ? 0 : now - since;
  }

  get active(): Problem[] {
    return [...this.#active.values()];
  }
}
