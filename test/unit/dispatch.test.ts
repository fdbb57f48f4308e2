import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { analyzeCluster, type Analysis } from '../../src/analysis/analyze.ts';
import type { ClusterView } from '../../src/analysis/cluster-view.ts';
import { PROBLEMS, problem, type ActionName, type Problem, type ProblemCode } from '../../src/analysis/problems.ts';
import type { ActionEvent, ActionOutcome, ClusterContext, SupervisorEvents } from '../../src/manager/cluster-context.ts';
import { chooseAction, Dispatcher, gate, type ActionPolicy, type ActionSpec, type GateInput } from '../../src/manager/dispatch.ts';
import { ProblemTracker } from '../../src/manager/problem-tracker.ts';
import { silentLogger } from '../../src/util/log.ts';
import { cluster, decided, id, primaryObs, replicaObs, view } from '../helpers/views.ts';

// The one gate every automatic action passes, and the choice of the one action to run now.

const open: ActionPolicy = { enabled: true, needsLeader: true, afterMs: 0, retryMs: 0 };
const input = (over: Omit<Partial<GateInput>, 'policy'> & { policy?: Partial<ActionPolicy> } = {}): GateInput => {
  const { policy, ...rest } = over;
  return { policy: { ...open, ...policy }, leader: true, inMaintenance: false, problemAgeMs: 0, now: 100_000, ...rest };
};
const blocked = { blockedUntil: 200_000, reason: 'blocked by anti-flapping: ... run `regent ack c` to allow it' };

// --- gate: each gate, in its order ------------------------------------------------------------

const gateCases: { name: string; i: GateInput; expect: { run: true } | { why: string | RegExp; loud: boolean } }[] = [
  { name: 'every gate open: run', i: input(), expect: { run: true } },
  { name: 'leadership: not the acting leader', i: input({ leader: false }), expect: { why: 'this manager is not the acting leader', loud: false } },
  { name: 'leadership not needed (a safety fence on a manager cut off from etcd): run', i: input({ leader: false, policy: { needsLeader: false } }), expect: { run: true } },
  { name: 'maintenance: the instance is in maintenance', i: input({ inMaintenance: true }), expect: { why: 'the instance is in maintenance', loud: false } },
  { name: 'leadership comes before maintenance', i: input({ leader: false, inMaintenance: true }), expect: { why: 'this manager is not the acting leader', loud: false } },
  { name: 'enabled: switched off, loudly (automatic failover off)', i: input({ policy: { enabled: { why: 'failover.automatic is false', loud: true } } }), expect: { why: 'failover.automatic is false', loud: true } },
  { name: 'enabled: switched off, quietly (a repair that is off)', i: input({ policy: { enabled: { why: 'repair.restartStoppedReplication is false', loud: false } } }), expect: { why: 'repair.restartStoppedReplication is false', loud: false } },
  { name: 'maintenance comes before enabled', i: input({ inMaintenance: true, policy: { enabled: { why: 'off', loud: true } } }), expect: { why: 'the instance is in maintenance', loud: false } },
  { name: 'anti-flapping: blocked, loudly, with its reason', i: input({ policy: { antiFlapping: blocked } }), expect: { why: blocked.reason, loud: true } },
  { name: 'anti-flapping without a block: run', i: input({ policy: { antiFlapping: {} } }), expect: { run: true } },
  { name: 'enabled comes before anti-flapping', i: input({ policy: { enabled: { why: 'off', loud: false }, antiFlapping: blocked } }), expect: { why: 'off', loud: false } },
  { name: 'problem age: too young, waits (quietly) for the rest', i: input({ problemAgeMs: 4000, policy: { afterMs: 10_000 } }), expect: { why: 'waiting 6000 ms more before acting', loud: false } },
  { name: 'problem age: exactly afterMs: run', i: input({ problemAgeMs: 10_000, policy: { afterMs: 10_000 } }), expect: { run: true } },
  { name: 'anti-flapping comes before the problem age', i: input({ problemAgeMs: 0, policy: { afterMs: 10_000, antiFlapping: blocked } }), expect: { why: blocked.reason, loud: true } },
  { name: 'retry cooldown: tried too recently', i: input({ lastAttemptAt: 97_000, policy: { retryMs: 5000 } }), expect: { why: 'tried 3000 ms ago; next attempt after 5000 ms', loud: false } },
  { name: 'retry cooldown: exactly retryMs later: run', i: input({ lastAttemptAt: 95_000, policy: { retryMs: 5000 } }), expect: { run: true } },
  { name: 'never tried: no cooldown', i: input({ policy: { retryMs: 5000 } }), expect: { run: true } },
  { name: 'the problem age comes before the cooldown', i: input({ problemAgeMs: 0, lastAttemptAt: 99_000, policy: { afterMs: 1000, retryMs: 5000 } }), expect: { why: 'waiting 1000 ms more before acting', loud: false } },
];

for (const c of gateCases) {
  test(`gate: ${c.name}`, () => {
    const v = gate(c.i);
    if ('run' in c.expect) return assert.deepEqual(v, { run: true });
    assert.equal(v.run, false);
    if (v.run) return;
    if (typeof c.expect.why === 'string') assert.equal(v.why, c.expect.why);
    else assert.match(v.why, c.expect.why);
    assert.equal(v.loud, c.expect.loud);
  });
}

// --- the registry's priority order -------------------------------------------------------------

test('PROBLEMS: the priority order of every problem code (unique priorities, dead primary above replica repairs)', () => {
  const ordered = (Object.keys(PROBLEMS) as ProblemCode[]).sort((a, b) => PROBLEMS[b].priority - PROBLEMS[a].priority);
  assert.deepEqual(ordered, [
    'TwoWritablePrimaries',
    'PrimaryLeaseExpired',
    'DeadPrimary',
    'DeadPrimaryAndSomeReplicas',
    'DeadPrimaryAndAllReplicas',
    'UnreachablePrimary',
    'NoWritablePrimary',
    'ErrantGtid',
    'OrphanInstance',
    'ReplicaPointsElsewhere',
    'ReplicationStopped',
    'ReplicationBroken',
    'ReplicaCannotReachPrimary',
    'WritableReplica',
    'ReplicaLagging',
    'UnmanagedReplica',
    'UnreachableInstance',
  ]);
  assert.equal(new Set(ordered.map((c) => PROBLEMS[c].priority)).size, ordered.length);
  assert.deepEqual(
    ordered.filter((c) => PROBLEMS[c].holdsLower),
    ['DeadPrimary', 'DeadPrimaryAndSomeReplicas', 'DeadPrimaryAndAllReplicas', 'UnreachablePrimary'],
  );
});

// --- chooseAction ------------------------------------------------------------------------------

const P = (code: ProblemCode, n?: number): Problem => problem(code, { instance: n === undefined ? undefined : id(n), summary: code, evidence: [code], data: {} as never });
const key = (p?: Problem) => (p ? `${p.code}@${p.instance ?? '-'}` : undefined);

const chooseCases: { name: string; problems: Problem[]; closed?: Record<string, string>; run?: string; held: string[] }[] = [
  { name: 'nothing with an action: nothing runs, nothing is held', problems: [P('UnreachableInstance', 2), P('WritableReplica', 3), P('ReplicaLagging', 3)], held: [] },
  { name: 'the highest priority runs, whatever the order of the analysis', problems: [P('ReplicationStopped', 2), P('TwoWritablePrimaries')], run: 'TwoWritablePrimaries@-', held: [] },
  { name: 'a lost lease is fenced before a dead primary is failed over', problems: [P('DeadPrimary', 1), P('PrimaryLeaseExpired', 1)], run: 'PrimaryLeaseExpired@127.0.0.1:3301', held: [] },
  {
    name: 'the first whose gate opens wins; the closed ones above it are held with why',
    problems: [P('ReplicationStopped', 2), P('TwoWritablePrimaries'), P('NoWritablePrimary', 1)],
    closed: { TwoWritablePrimaries: 'this manager is not the acting leader' },
    run: 'NoWritablePrimary@127.0.0.1:3301',
    held: ['TwoWritablePrimaries@-'],
  },
  { name: 'a dead primary runs its failover', problems: [P('ReplicationStopped', 3), P('DeadPrimary', 1)], run: 'DeadPrimary@127.0.0.1:3301', held: [] },
  {
    name: 'a dead primary held back (anti-flapping) holds every lower action too',
    problems: [P('ReplicationStopped', 3), P('DeadPrimary', 1), P('ReplicaPointsElsewhere', 2)],
    closed: { DeadPrimary: 'blocked by anti-flapping' },
    held: ['DeadPrimary@127.0.0.1:3301'],
  },
  {
    name: 'DeadPrimaryAndSomeReplicas held holds lower ones too',
    problems: [P('DeadPrimaryAndSomeReplicas', 1), P('OrphanInstance', 3)],
    closed: { DeadPrimaryAndSomeReplicas: 'failover.automatic is false' },
    held: ['DeadPrimaryAndSomeReplicas@127.0.0.1:3301'],
  },
  { name: 'an unreachable primary (no action) holds every lower action', problems: [P('UnreachablePrimary', 1), P('ReplicationStopped', 2), P('ReplicaPointsElsewhere', 3)], held: [] },
  { name: 'no instance answering (no action) holds every lower action', problems: [P('DeadPrimaryAndAllReplicas', 1), P('OrphanInstance', 2)], held: [] },
  { name: 'a fence above a held dead primary still runs', problems: [P('DeadPrimary', 1), P('TwoWritablePrimaries')], closed: { DeadPrimary: 'blocked' }, run: 'TwoWritablePrimaries@-', held: [] },
  { name: 'problems without an action are skipped, not stopped at', problems: [P('ErrantGtid', 2), P('OrphanInstance', 3)], run: 'OrphanInstance@127.0.0.1:3303', held: [] },
  { name: 'equal priority: the order of the analysis', problems: [P('ReplicationStopped', 3), P('ReplicationStopped', 2)], run: 'ReplicationStopped@127.0.0.1:3303', held: [] },
  {
    name: 'equal priority: the second runs when the first is held',
    problems: [P('ReplicationStopped', 3), P('ReplicationStopped', 2)],
    closed: { 'ReplicationStopped@127.0.0.1:3303': 'waiting' },
    run: 'ReplicationStopped@127.0.0.1:3302',
    held: ['ReplicationStopped@127.0.0.1:3303'],
  },
  {
    name: 'every gate closed: nothing runs, all held in priority order',
    problems: [P('ReplicaPointsElsewhere', 3), P('OrphanInstance', 2), P('NoWritablePrimary', 1)],
    closed: { ReplicaPointsElsewhere: 'a', OrphanInstance: 'b', NoWritablePrimary: 'c' },
    held: ['NoWritablePrimary@127.0.0.1:3301', 'OrphanInstance@127.0.0.1:3302', 'ReplicaPointsElsewhere@127.0.0.1:3303'],
  },
];

for (const c of chooseCases) {
  test(`chooseAction: ${c.name}`, () => {
    const asked: string[] = [];
    const choice = chooseAction(c.problems, (p) => {
      asked.push(key(p)!);
      const why = c.closed?.[key(p)!] ?? c.closed?.[p.code];
      return why ? input({ policy: { enabled: { why, loud: true } } }) : input();
    });
    assert.equal(key(choice.run), c.run);
    assert.deepEqual(choice.held.map((h) => key(h.problem)), c.held);
    for (const h of choice.held) assert.equal(h.why, c.closed?.[key(h.problem)!] ?? c.closed?.[h.problem.code]);
    for (const a of asked) assert.ok(PROBLEMS[a.split('@')[0] as ProblemCode].action, `the gate of ${a}, which has no action, was asked`);
  });
}

// --- Dispatcher with a fake executor -----------------------------------------------------------

const c3 = cluster(3);
/** n2's replication stopped without an error: restart-replication. */
const vStopped = () => view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10', { ioThread: 'no', sqlThread: false }), replicaObs(3, '0-1-10')]);
/** n1 read_only (restore-writable, priority 70) and n2 stopped (restart-replication, 30). */
const vBoth = () => view(c3, [primaryObs(1, '0-1-10', { readOnly: true }), replicaObs(2, '0-1-10', { ioThread: 'no', sqlThread: false }), replicaObs(3, '0-1-10')]);
const vHealthy = () => view(c3, [primaryObs(1, '0-1-10'), replicaObs(2, '0-1-10'), replicaObs(3, '0-1-10')]);

const ACTIONS: ActionName[] = ['failover', 'fence-stray-primaries', 'fence-for-lost-lease', 'restore-writable', 'rejoin', 'restart-replication', 'repoint-replica'];

interface Call {
  action: ActionName;
  code: string;
  instance?: string;
  freshProblems: string[];
}

function rig(opts: { view: () => ClusterView; leader?: boolean; decision?: ReturnType<typeof decided>; specs?: Partial<Record<ActionName, Partial<ActionSpec>>>; lockFails?: string }) {
  let current = opts.view;
  const events = new EventEmitter<SupervisorEvents>();
  const actionEvents: ActionEvent[] = [];
  events.on('action', (e) => actionEvents.push(e));
  const logged: string[] = [];
  const locks: string[] = [];
  let released = 0;
  const reprobed: string[][] = [];
  const suspecting: boolean[] = [];
  const calls: Call[] = [];
  const ctx = {
    cluster: c3,
    log: silentLogger,
    options: {},
    monitor: {
      reprobe: async (ids: string[]) => {
        reprobed.push(ids);
      },
      setSuspecting: (on: boolean) => suspecting.push(on),
    },
    decision: { snapshot: opts.decision ?? decided({ primary: id(1) }) },
    coordinator: {
      lockCluster: async (_cluster: string, owner: string) => {
        if (opts.lockFails) throw new Error(opts.lockFails);
        locks.push(owner);
        return async () => {
          released++;
        };
      },
    },
    events,
    view: () => current(),
    logBlocked: (m: string) => logged.push(m),
  } as unknown as ClusterContext;
  const actions = Object.fromEntries(
    ACTIONS.map((name): [ActionName, ActionSpec] => [
      name,
      {
        policy: () => open,
        lock: 'local',
        reprobe: (_ctx, p) => [p.instance ?? 'everything'],
        run: async (_ctx, p, fresh): Promise<ActionOutcome> => {
          calls.push({ action: name, code: p.code, instance: p.instance, freshProblems: fresh.problems.map((x) => x.code) });
          return { outcome: 'done', detail: `${name} done` };
        },
        ...opts.specs?.[name],
      },
    ]),
  ) as Record<ActionName, ActionSpec>;
  let idle = 0;
  const tracker = new ProblemTracker();
  const dispatcher = new Dispatcher(ctx, tracker, actions, () => opts.leader ?? true, () => idle++);
  return {
    dispatcher,
    tracker,
    calls,
    actionEvents,
    logged,
    locks,
    reprobed,
    suspecting,
    released: () => released,
    idle: () => idle,
    setView: (v: () => ClusterView) => (current = v),
    analysis: (): Analysis => analyzeCluster(current()),
  };
}

test('Dispatcher: runs the highest-priority open action once, after a re-probe, and reports it as an action event', async () => {
  const r = rig({ view: vBoth });
  await r.dispatcher.dispatch(r.analysis());
  assert.deepEqual(
    r.calls.map((c) => [c.action, c.code, c.instance]),
    [['restore-writable', 'NoWritablePrimary', id(1)]],
  );
  assert.deepEqual(r.reprobed, [[id(1)]]);
  assert.deepEqual(r.suspecting, [false], 'fast probing stops while an action runs');
  assert.equal(r.actionEvents.length, 1);
  const e = r.actionEvents[0]!;
  assert.deepEqual({ action: e.action, code: e.code, instance: e.instance, outcome: e.outcome, detail: e.detail }, { action: 'restore-writable', code: 'NoWritablePrimary', instance: id(1), outcome: 'done', detail: 'restore-writable done' });
  assert.ok(e.durationMs >= 0);
  assert.equal(r.idle(), 1, 'the cluster is judged again at once');
  assert.equal(r.dispatcher.acting, false);
});

test('Dispatcher: the action gets the problem and the analysis of the fresh look', async () => {
  const r = rig({ view: vStopped });
  const first = r.analysis();
  r.setView(vBoth);
  await r.dispatcher.dispatch(first);
  assert.equal(r.calls.length, 1);
  assert.deepEqual(r.calls[0]!.freshProblems.sort(), ['NoWritablePrimary', 'ReplicationStopped']);
});

test('Dispatcher: a problem gone in the fresh view is not acted on (outcome stale)', async () => {
  const r = rig({ view: vStopped });
  const first = r.analysis();
  r.setView(vHealthy);
  await r.dispatcher.dispatch(first);
  assert.deepEqual(r.calls, []);
  assert.deepEqual(
    r.actionEvents.map((e) => [e.action, e.code, e.outcome, e.detail]),
    [['restart-replication', 'ReplicationStopped', 'stale', 'gone after a fresh look']],
  );
});

test('Dispatcher: one action at a time: a dispatch while one acts returns without running anything', async () => {
  let release!: () => void;
  const gateP = new Promise<void>((res) => (release = res));
  let runs = 0;
  const r = rig({
    view: vStopped,
    specs: {
      'restart-replication': {
        run: async () => {
          runs++;
          await gateP;
          return { outcome: 'done', detail: 'd' };
        },
      },
    },
  });
  const first = r.dispatcher.dispatch(r.analysis());
  await new Promise((res) => setImmediate(res));
  assert.equal(r.dispatcher.acting, true);
  await r.dispatcher.dispatch(r.analysis());
  assert.equal(runs, 1);
  assert.equal(r.actionEvents.length, 0, 'the second dispatch reported nothing');
  release();
  await first;
  assert.equal(runs, 1);
  assert.equal(r.actionEvents.length, 1);
  assert.equal(r.dispatcher.acting, false);
});

test('Dispatcher: the cluster lock is taken (and released) only for lock: cluster', async () => {
  const local = rig({ view: vStopped });
  await local.dispatcher.dispatch(local.analysis());
  assert.deepEqual(local.locks, []);
  assert.equal(local.calls.length, 1);

  const locked = rig({ view: vStopped, specs: { 'restart-replication': { lock: 'cluster' } } });
  await locked.dispatcher.dispatch(locked.analysis());
  assert.deepEqual(locked.locks, ['restart-replication (automatic: ReplicationStopped)']);
  assert.equal(locked.released(), 1);
  assert.equal(locked.calls.length, 1);
});

test('Dispatcher: a cluster lock held elsewhere is a refusal; nothing runs', async () => {
  const r = rig({ view: vStopped, lockFails: 'cluster c is locked by regent-cli', specs: { 'restart-replication': { lock: 'cluster' } } });
  await r.dispatcher.dispatch(r.analysis());
  assert.deepEqual(r.calls, []);
  assert.deepEqual(r.actionEvents.map((e) => [e.outcome, e.detail]), [['refused', 'cluster c is locked by regent-cli']]);
  assert.equal(r.dispatcher.acting, false);
});

test('Dispatcher: an action that throws becomes a refusal, logged, and the dispatcher is free again', async () => {
  let throwNext = true;
  const r = rig({
    view: vStopped,
    specs: {
      'restart-replication': {
        run: async () => {
          if (throwNext) {
            throwNext = false;
            throw new Error('START SLAVE failed: Access denied');
          }
          return { outcome: 'done', detail: 'second time' };
        },
      },
    },
  });
  await r.dispatcher.dispatch(r.analysis());
  assert.deepEqual(r.actionEvents.map((e) => [e.outcome, e.detail]), [['refused', 'START SLAVE failed: Access denied']]);
  assert.deepEqual(r.logged, [`restart-replication for ReplicationStopped on ${id(2)} not done: START SLAVE failed: Access denied`]);
  assert.equal(r.dispatcher.acting, false);
  await r.dispatcher.dispatch(r.analysis());
  assert.deepEqual(r.actionEvents.map((e) => e.outcome), ['refused', 'done']);
});

test('Dispatcher: an action that refuses is logged as not done', async () => {
  const r = rig({ view: vStopped, specs: { 'restart-replication': { run: async () => ({ outcome: 'refused', detail: 'stopped on purpose' }) } } });
  await r.dispatcher.dispatch(r.analysis());
  assert.deepEqual(r.actionEvents.map((e) => [e.outcome, e.detail]), [['refused', 'stopped on purpose']]);
  assert.equal(r.logged.length, 1);
});

test('Dispatcher: not the acting leader: nothing runs, nothing is reported (the hold is quiet)', async () => {
  const r = rig({ view: vBoth, leader: false });
  await r.dispatcher.dispatch(r.analysis());
  assert.deepEqual(r.calls, []);
  assert.deepEqual(r.actionEvents, []);
  assert.deepEqual(r.logged, []);
  assert.deepEqual(r.reprobed, [], 'no re-probe either');
});

test('Dispatcher: a loud hold is logged with the action, the problem and why', async () => {
  const r = rig({ view: vStopped, specs: { 'restart-replication': { policy: () => ({ ...open, enabled: { why: 'repair.restartStoppedReplication is false', loud: true } }) } } });
  await r.dispatcher.dispatch(r.analysis());
  assert.deepEqual(r.calls, []);
  assert.deepEqual(r.logged, [`restart-replication for ReplicationStopped on ${id(2)} held: repair.restartStoppedReplication is false`]);
});

test('Dispatcher: the instance in maintenance (decision record): held, the next problem runs', async () => {
  const r = rig({ view: vBoth, decision: decided({ primary: id(1), maintenance: [id(1)] }) });
  const a = r.analysis();
  // NoWritablePrimary is not even reported for a primary in maintenance; force it in to test the gate.
  const forced: Analysis = { ...a, problems: [problem('NoWritablePrimary', { instance: id(1), summary: 's', evidence: ['e'], data: {} }), ...a.problems] };
  await r.dispatcher.dispatch(forced);
  assert.deepEqual(r.calls.map((c) => c.code), ['ReplicationStopped']);
});

test('Dispatcher: the retry cooldown counts from the last attempt on the same problem', async () => {
  const r = rig({ view: vStopped, specs: { 'restart-replication': { policy: () => ({ ...open, retryMs: 60_000 }) } } });
  await r.dispatcher.dispatch(r.analysis());
  await r.dispatcher.dispatch(r.analysis());
  assert.equal(r.calls.length, 1);
  const gi = r.dispatcher.gateInput(r.analysis().problems[0]!);
  assert.ok(gi.lastAttemptAt !== undefined);
});

test('Dispatcher: the problem age comes from the tracker', async () => {
  const r = rig({ view: vStopped, specs: { 'restart-replication': { policy: () => ({ ...open, afterMs: 10_000 }) } } });
  const a = r.analysis();
  r.tracker.update(a.problems, Date.now());
  await r.dispatcher.dispatch(a);
  assert.equal(r.calls.length, 0, 'too young');
  r.tracker.update([], 0);
  r.tracker.update(a.problems, Date.now() - 20_000);
  await r.dispatcher.dispatch(a);
  assert.equal(r.calls.length, 1, 'old enough');
});
