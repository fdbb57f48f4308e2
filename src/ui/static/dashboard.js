// Regent dashboard: reads the manager's JSON API, follows its event stream, and sends the few
// actions a person needs (switchover, ack, rejoin, maintenance) with the API token they typed in.
//
// Every URL is relative to the page, so the dashboard also works behind a reverse proxy that
// serves the manager under a sub-path (https://ops.example/regent/).
//
// Data flow: refresh() loads everything the page shows; the event stream (/api/v1/events) asks for
// a refresh shortly after anything happens (debounced), and a slow poll covers a broken stream.
// recovery_step events are also shown the moment they arrive (the "Live activity" panel).
import { $, ago, clock, dateTime, duration, fill, h } from './dom.js';
import { instanceStatus, lagText, topologySvg } from './topology.js';

const POLL_MS = 5000;
const DEBOUNCE_MS = 200;
const TOKEN_KEY = 'regent.apiToken';
const MAX_EVENTS = 30;

const state = {
  /** Overview of every cluster (GET /api/v1/clusters). */
  clusters: [],
  /** The cluster shown in detail, by name (kept in the URL hash). */
  selected: decodeURIComponent(location.hash.replace(/^#cluster=/, '')) || undefined,
  /** GET /api/v1/clusters/:c, /plan and /api/v1/recoveries for the selected cluster. */
  cluster: undefined,
  plan: undefined,
  recoveries: [],
  managers: [],
  /** Live recoveries by planId, built from recovery_step events. */
  progress: new Map(),
  /** Recent events of the stream, newest first. */
  events: [],
  lastUpdate: 0,
  /** An action sent from this page and not answered yet (one at a time). */
  busy: undefined,
  /** The selected cluster's SQL endpoint counters (from /metrics), when it has one. */
  sql: undefined,
};

// ---------------------------------------------------------------------------------------------
// API access

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The token lives in sessionStorage only: this tab, until it is closed. It is never shown or logged. */
const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || undefined,
  set: (v) => sessionStorage.setItem(TOKEN_KEY, v),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  const body = await res.json().catch(() => undefined);
  if (!res.ok) throw new ApiFailure(res.status, body?.error ?? `${res.status} ${res.statusText}`);
  return body;
}

/** The manager's Prometheus text (the SQL endpoint's counters are read from it). */
async function getMetrics() {
  const res = await fetch('metrics', { headers: { accept: 'text/plain' }, cache: 'no-store' });
  if (!res.ok) throw new ApiFailure(res.status, `${res.status} ${res.statusText}`);
  return res.text();
}

/**
 * The regent_sql_* series of one cluster: statements by route and reason, sessions, causal waits.
 * Prometheus text format: `name{label="value",...} number`; label values are escaped with \.
 */
function sqlStats(text, cluster) {
  const out = { sessions: 0, statements: [], replica: 0, primary: 0, causal: {}, authFailures: 0 };
  for (const line of text.split('\n')) {
    if (!line.startsWith('regent_sql_')) continue;
    const m = /^(\w+)\{(.*)\}\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, ch) => (ch === 'n' ? '\n' : ch));
    if (labels.cluster !== cluster) continue;
    const v = Number(m[3]);
    if (m[1] === 'regent_sql_statements_total') {
      out.statements.push({ route: labels.route, reason: labels.reason, count: v });
      if (labels.route === 'replica') out.replica += v;
      else out.primary += v;
    } else if (m[1] === 'regent_sql_sessions') out.sessions = v;
    else if (m[1] === 'regent_sql_causal_waits_total') out.causal[labels.outcome] = v;
    else if (m[1] === 'regent_sql_auth_failures_total') out.authFailures += v;
  }
  return out;
}

/** A mutating call: asks for the token first when this tab has none. */
async function act(method, path, body) {
  const secret = token.get() ?? (await askToken());
  const res = await fetch(path, {
    method,
    headers: { accept: 'application/json', 'content-type': 'application/json', authorization: `Bearer ${secret}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const data = await res.json().catch(() => undefined);
  if (res.status === 401) token.forget(); // a wrong token is not kept: the next action asks again
  if (!res.ok) throw new ApiFailure(res.status, data?.error ?? `${res.status} ${res.statusText}`);
  return data;
}

/** What a person reads when an action is refused. */
function explain(e) {
  if (!(e instanceof ApiFailure)) return `Could not reach the manager: ${e.message}`;
  switch (e.status) {
    case 401:
      return 'The manager refused the API token (401). The next action asks for it again.';
    case 403:
      return `Actions are disabled on this manager (403): ${e.message}.`;
    case 409:
      return `Refused (409): ${e.message}`;
    case 404:
      return `Not found (404): ${e.message}`;
    case 400:
      return `Bad request (400): ${e.message}`;
    default:
      return `Failed (${e.status}): ${e.message}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Notices (one line at the top of the page)

let noticeTimer;
function notice(text, kind = 'info', sticky = false) {
  const el = $('notice');
  clearTimeout(noticeTimer);
  el.className = `notice ${kind}`;
  el.dataset.kind = kind;
  fill(el, h('span', {}, text), h('button', { type: 'button', class: 'notice-close', 'aria-label': 'dismiss', onclick: () => (el.hidden = true) }, '×'));
  el.hidden = false;
  if (!sticky) noticeTimer = setTimeout(() => (el.hidden = true), kind === 'error' ? 20000 : 8000);
}

// ---------------------------------------------------------------------------------------------
// Dialogs

/** Opens the token dialog; resolves with the token once saved, rejects when cancelled. */
function askToken() {
  const dialog = $('token-dialog');
  const input = $('token-input');
  return new Promise((resolve, reject) => {
    const done = (value) => {
      dialog.removeEventListener('close', onClose);
      $('token-form').removeEventListener('submit', onSubmit);
      input.value = ''; // nothing of the token stays in the page
      if (value) resolve(value);
      else reject(new Cancelled());
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      if (!v) return;
      token.set(v);
      done(v);
      dialog.close();
    };
    const onClose = () => done(undefined);
    $('token-form').addEventListener('submit', onSubmit);
    dialog.addEventListener('close', onClose);
    input.value = '';
    dialog.showModal();
    input.focus();
  });
}

class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/**
 * A confirmation dialog with a title, a body (nodes) and a confirm label; resolves true on confirm.
 * `validate` may return an error text to keep the dialog open.
 */
function confirmDialog({ title, body, confirm = 'Confirm', validate }) {
  const dialog = $('action-dialog');
  fill($('action-title'), title);
  fill($('action-body'), body);
  const button = $('action-confirm');
  button.textContent = confirm;
  const error = $('action-error');
  error.hidden = true;
  return new Promise((resolve) => {
    const form = $('action-form');
    const finish = (ok) => {
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('close', onClose);
      resolve(ok);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      const problem = validate?.();
      if (problem) {
        fill(error, problem);
        error.hidden = false;
        return;
      }
      dialog.removeEventListener('close', onClose);
      dialog.close();
      finish(true);
    };
    const onClose = () => finish(false);
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
  });
}

// Cancel buttons and the token dialog's "forget" button.
for (const b of document.querySelectorAll('[data-close]')) b.addEventListener('click', () => b.closest('dialog').close());
$('token-forget').addEventListener('click', () => {
  token.forget();
  $('token-dialog').close();
  renderTokenButton();
  notice('The API token was removed from this tab.');
});
$('token-button').addEventListener('click', () => askToken().then(
  () => {
    renderTokenButton();
    notice('API token saved for this tab.', 'ok');
  },
  () => renderTokenButton(),
));

// ---------------------------------------------------------------------------------------------
// Actions

/** Runs one action at a time, tells the person how it went, then refreshes the page. */
async function run(label, fn) {
  if (state.busy) {
    notice(`Wait for "${state.busy}" to finish first.`, 'error');
    return;
  }
  state.busy = label;
  renderBusy();
  notice(`${label}…`, 'info', true);
  try {
    const result = await fn();
    notice(result ?? `${label}: done.`, 'ok');
  } catch (e) {
    if (e instanceof Cancelled) $('notice').hidden = true;
    else notice(`${label}: ${explain(e)}`, 'error', true);
  } finally {
    state.busy = undefined;
    renderBusy();
    renderTokenButton();
    scheduleRefresh(0);
  }
}

const clusterPath = (c) => `api/v1/clusters/${encodeURIComponent(c)}`;
const instancePath = (c, id) => `${clusterPath(c)}/instances/${encodeURIComponent(id)}`;

function nameOf(cluster, id) {
  return cluster?.instances.find((i) => i.id === id)?.name ?? id;
}

/** Prose from the API with instance addresses replaced by their names ("127.0.0.1:3307" -> "node2"). */
function named(text, cluster) {
  if (!text || !cluster) return text ?? '';
  let out = String(text);
  for (const i of cluster.instances) {
    // "127.0.0.1:3307" but not the start of "127.0.0.1:33070"
    const escaped = i.id.replace(/[.*+?^$|()[\]{}\\]/g, (ch) => `\\${ch}`);
    out = out.replace(new RegExp(`${escaped}(?![0-9])`, 'g'), i.name);
  }
  return out;
}

/** Replicas of the primary that a switchover may target: reachable, replicating from it. */
function switchoverTargets(c) {
  return c.instances.filter((i) => i.role === 'replica' && i.reachable && i.source === c.primary);
}

async function switchover() {
  const c = state.cluster;
  if (!c) return;
  const targets = switchoverTargets(c);
  if (!c.primary || targets.length === 0) {
    notice('No switchover is possible now: it needs a reachable primary and a replica replicating from it.', 'error');
    return;
  }
  const best = state.plan?.choice?.candidate;
  const select = h(
    'select',
    { id: 'switchover-target', dataset: { testid: 'switchover-target' } },
    targets.map((t) => {
      const st = instanceStatus(t, c);
      return h('option', { value: t.id, selected: t.id === best }, `${t.name} (${t.id}) — ${st.why}${t.id === best ? ' — recommended' : ''}`);
    }),
  );
  const ok = await confirmDialog({
    title: `Switchover of ${c.name}`,
    confirm: 'Switch over',
    body: [
      h('p', {}, 'The current primary ', h('b', {}, `${nameOf(c, c.primary)} (${c.primary})`), ' becomes a replica of the new one.'),
      h('label', { class: 'field' }, 'New primary ', select),
      h(
        'ul',
        { class: 'small muted' },
        h('li', {}, 'New writes are held (at the router, when there is one), the old primary is set read_only and its sessions are killed after a short grace.'),
        h('li', {}, 'The target catches up exactly, is promoted, and every replica follows it; writes pause briefly, typically well under a second.'),
        h('li', {}, 'Pre-checks (lag, errant transactions, long transactions) refuse the switchover rather than risk it.'),
      ),
    ],
  });
  if (!ok) return;
  const target = select.value;
  await run(`Switchover ${nameOf(c, c.primary)} → ${nameOf(c, target)}`, async () => {
    const r = await act('POST', `${clusterPath(c.name)}/switchover`, { target });
    if (r && r.ok === false) throw new ApiFailure(500, r.error ?? 'the switchover failed');
    return `Switchover done: ${nameOf(c, r?.newPrimary ?? target)} is the primary${r?.writePauseMs !== undefined ? ` (writes paused ${duration(r.writePauseMs)})` : ''}.`;
  });
}

async function ack() {
  const c = state.cluster;
  if (!c) return;
  const ok = await confirmDialog({
    title: `Acknowledge the last recovery of ${c.name}`,
    confirm: 'Acknowledge',
    body: h('p', {}, 'Regent blocks a second automatic failover of a cluster for a while after a recovery (anti-flapping). Acknowledging says a person has looked at it: automatic failover is allowed again at once.'),
  });
  if (!ok) return;
  await run(`Ack ${c.name}`, async () => {
    await act('POST', `${clusterPath(c.name)}/ack`);
    return `Acknowledged: automatic failover of ${c.name} is allowed again.`;
  });
}

async function rejoin(inst) {
  const c = state.cluster;
  const ok = await confirmDialog({
    title: `Rejoin ${inst.name}`,
    confirm: 'Rejoin',
    body: [
      h('p', {}, 'Makes ', h('b', {}, `${inst.name} (${inst.id})`), ` a replica of the primary ${nameOf(c, c.primary)} again.`),
      h('p', { class: 'small muted' }, 'Regent compares its transactions with the primary first: errant transactions are rewound (saved first) or the rejoin is refused, as the cluster rules say.'),
    ],
  });
  if (!ok) return;
  await run(`Rejoin ${inst.name}`, async () => {
    const r = await act('POST', `${instancePath(c.name, inst.id)}/rejoin`);
    return `Rejoin of ${inst.name}: ${r?.action ?? 'done'}${r?.savedTo ? ` (errant transactions saved to ${r.savedTo})` : ''}.`;
  });
}

async function maintenance(inst, on) {
  const c = state.cluster;
  if (!on) {
    await run(`End maintenance of ${inst.name}`, async () => {
      await act('DELETE', `${instancePath(c.name, inst.id)}/maintenance`);
      return `${inst.name} is out of maintenance: Regent acts on it again.`;
    });
    return;
  }
  const minutes = h('input', { type: 'number', min: 1, max: 10080, value: 60, id: 'maintenance-minutes', dataset: { testid: 'maintenance-minutes' } });
  const ok = await confirmDialog({
    title: `Maintenance of ${inst.name}`,
    confirm: 'Start maintenance',
    body: [
      h('p', {}, 'While in maintenance, ', h('b', {}, inst.name), ' is observed but never acted on: not promoted, not repaired, not rejoined.'),
      h('label', { class: 'field' }, 'Duration (minutes) ', minutes),
    ],
    validate: () => (Number(minutes.value) >= 1 && Number(minutes.value) <= 10080 ? undefined : 'The duration must be between 1 and 10080 minutes.'),
  });
  if (!ok) return;
  await run(`Maintenance of ${inst.name}`, async () => {
    const r = await act('POST', `${instancePath(c.name, inst.id)}/maintenance`, { minutes: Number(minutes.value) });
    return `${inst.name} is in maintenance until ${clock(r?.until)}.`;
  });
}

/** The findings of a crawl (discovery's and the doctor's) as a list a person can read. */
function proposalBody(p) {
  const items = [
    ...(p.refusals ?? []).map((r) => ['critical', `refused: ${r}`]),
    ...(p.discoveryFindings ?? []).map((f) => [f.severity, `${f.message}${f.fix ? ` — fix: ${f.fix}` : ''}`]),
    ...(p.doctor ?? []).map((f) => [f.severity, `${f.message}${f.fix ? ` — fix: ${f.fix}` : ''}`]),
  ];
  return [
    h('p', {}, `Found from ${p.seed}: primary `, h('b', { class: 'mono' }, p.primary ?? 'none'), `, ${p.instances.length} instance${p.instances.length === 1 ? '' : 's'}.`),
    h(
      'table',
      { class: 'table small', dataset: { testid: 'proposal-instances' } },
      h('thead', {}, h('tr', {}, h('th', {}, 'Instance'), h('th', {}, 'Role'), h('th', {}, 'Source'), h('th', {}, 'Found via'))),
      h(
        'tbody',
        {},
        p.instances.map((i) => h('tr', {}, h('td', { class: 'mono' }, i.id), h('td', {}, i.error ? h('span', { class: 'bad' }, `${i.role}: ${i.error}`) : i.role), h('td', { class: 'mono' }, i.source ?? '—'), h('td', { class: 'muted' }, i.via))),
      ),
    ),
    items.length === 0
      ? h('p', { class: 'small ok' }, 'The doctor found nothing to fix.')
      : h('ul', { class: 'findings small', dataset: { testid: 'proposal-findings' } }, items.map(([sev, text]) => h('li', { class: sev }, text))),
  ];
}

/**
 * Adds a cluster from one of its servers: the manager crawls the topology (a dry run first), the
 * person reads what was found and the doctor's findings, then registers it.
 */
async function addCluster() {
  const name = h('input', { type: 'text', id: 'add-cluster-name', dataset: { testid: 'add-cluster-name' }, autocomplete: 'off', spellcheck: 'false', placeholder: 'orders' });
  const seed = h('input', { type: 'text', id: 'add-cluster-seed', dataset: { testid: 'add-cluster-seed' }, autocomplete: 'off', spellcheck: 'false', placeholder: '10.0.0.5:3306' });
  const ok = await confirmDialog({
    title: 'Add a cluster',
    confirm: 'Look',
    body: [
      h('p', {}, 'Name one server of the cluster (any of them): Regent walks from it to its source and replicas, then shows what it found before anything is registered.'),
      h('label', { class: 'field' }, 'Name ', name),
      h('label', { class: 'field' }, 'One server (host:port) ', seed),
    ],
    validate: () => {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name.value.trim())) return 'The name: letters, digits, _ . - only, starting with a letter or digit.';
      if (state.clusters.some((c) => c.name === name.value.trim())) return `There is a cluster named ${name.value.trim()} already.`;
      if (!/^[^\s:]+:\d{1,5}$/.test(seed.value.trim())) return 'The server as host:port, for example 10.0.0.5:3306.';
      return undefined;
    },
  });
  if (!ok) return;
  const req = { name: name.value.trim(), seed: seed.value.trim() };
  let proposal;
  await run(`Discovery from ${req.seed}`, async () => {
    proposal = await act('POST', 'api/v1/clusters', { ...req, dryRun: true });
    return `Discovery from ${req.seed}: ${proposal.instances.length} instance(s) found.`;
  });
  if (!proposal) return;
  const critical = (proposal.doctor ?? []).some((f) => f.severity === 'critical');
  const accept = h('input', { type: 'checkbox', id: 'add-cluster-accept', dataset: { testid: 'add-cluster-accept' } });
  const register = await confirmDialog({
    title: `Register ${req.name}?`,
    confirm: 'Register',
    body: [
      ...proposalBody(proposal),
      (proposal.refusals ?? []).length > 0 ? h('p', { class: 'bad' }, 'This topology cannot be registered as it stands; fix the refusals above first.') : null,
      critical ? h('label', { class: 'field small' }, accept, ' Register despite the critical findings (Regent will not act on what it cannot handle)') : null,
      h('p', { class: 'small muted' }, 'Registering adds the cluster to the configuration (the YAML file, comments kept, or the etcd inventory); managers take it on without a restart.'),
    ],
    validate: () => {
      if ((proposal.refusals ?? []).length > 0) return 'Refused: see above.';
      if (critical && !accept.checked) return 'The doctor found critical problems: fix them, or tick the box to register anyway.';
      return undefined;
    },
  });
  if (!register) return;
  await run(`Add cluster ${req.name}`, async () => {
    const r = await act('POST', 'api/v1/clusters', { ...req, acceptFindings: accept.checked });
    state.selected = req.name;
    return `Cluster ${req.name} registered (${r.where}); Regent watches ${r.instances.length} instance(s).`;
  });
}

/** Stops managing a cluster; the person types its name to confirm. Its servers are not touched. */
async function removeCluster() {
  const c = state.cluster;
  if (!c) return;
  const typed = h('input', { type: 'text', id: 'remove-cluster-name', dataset: { testid: 'remove-cluster-name' }, autocomplete: 'off', spellcheck: 'false' });
  const ok = await confirmDialog({
    title: `Remove ${c.name} from Regent`,
    confirm: 'Remove',
    body: [
      h('p', {}, 'Regent stops watching ', h('b', {}, c.name), ': no failover, no routing (its endpoints close), no alerts. The servers and their replication are left exactly as they are.'),
      h('label', { class: 'field' }, `Type ${c.name} to confirm `, typed),
    ],
    validate: () => (typed.value.trim() === c.name ? undefined : `Type the cluster's name, ${c.name}, to confirm.`),
  });
  if (!ok) return;
  await run(`Remove cluster ${c.name}`, async () => {
    const r = await act('DELETE', clusterPath(c.name));
    state.selected = undefined;
    return `Cluster ${c.name} removed (${r.where}).`;
  });
}

$('add-cluster-button').addEventListener('click', () => void addCluster());

// ---------------------------------------------------------------------------------------------
// Loading

let refreshing;
let again = false;
let timer;

/** Asks for a refresh soon; a burst of events gives one refresh, at most DEBOUNCE_MS late. */
function scheduleRefresh(delay = DEBOUNCE_MS) {
  if (timer) return;
  timer = setTimeout(() => {
    timer = undefined;
    void refresh();
  }, delay);
}

/** Loads everything; a refresh asked for while one runs is done right after it. */
async function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = load()
    .catch((e) => {
      setLive('offline');
      notice(`Cannot reach the manager: ${e.message}. Retrying every ${POLL_MS / 1000} s.`, 'error', true);
    })
    .finally(() => {
      refreshing = undefined;
      if (again) {
        again = false;
        void refresh();
      }
    });
  return refreshing;
}

async function load() {
  const [overview, managers] = await Promise.all([getJson('api/v1/clusters'), getJson('api/v1/managers').catch(() => ({ managers: [] }))]);
  state.clusters = overview.clusters;
  state.managers = managers.managers;
  if (!state.selected || !state.clusters.some((c) => c.name === state.selected)) state.selected = state.clusters[0]?.name;
  if (state.selected) {
    const c = state.selected;
    const hasSql = Boolean(state.clusters.find((x) => x.name === c)?.endpoints?.sql);
    const [cluster, plan, recoveries, sql] = await Promise.all([
      getJson(clusterPath(c)),
      getJson(`${clusterPath(c)}/plan`).catch((e) => ({ refusal: e.message })),
      getJson(`api/v1/recoveries?cluster=${encodeURIComponent(c)}&limit=10`).catch(() => ({ recoveries: state.recoveries })),
      hasSql ? getMetrics().then((text) => sqlStats(text, c)).catch(() => undefined) : undefined,
    ]);
    // The selection may have changed while loading.
    if (c !== state.selected) return;
    state.cluster = cluster;
    state.plan = plan;
    state.recoveries = recoveries.recoveries;
    state.sql = sql;
  } else state.cluster = undefined;
  state.lastUpdate = Date.now();
  if ($('live').dataset.state === 'offline') {
    setLive(stream?.readyState === EventSource.OPEN ? 'live' : 'polling');
    $('notice').hidden = true;
  }
  render();
}

// ---------------------------------------------------------------------------------------------
// Event stream

let stream;

function setLive(s) {
  const el = $('live');
  el.dataset.state = s;
  el.textContent = { live: '● live', polling: `○ polling every ${POLL_MS / 1000} s`, connecting: 'connecting…', offline: '✕ manager unreachable' }[s] ?? s;
  el.title = s === 'live' ? 'following the manager event stream' : 'the event stream is down: the page polls the API';
}

function connectEvents() {
  stream = new EventSource('api/v1/events');
  stream.onopen = () => {
    setLive('live');
    scheduleRefresh(0); // whatever happened while disconnected
  };
  stream.onerror = () => {
    // EventSource reconnects by itself; until then the poll keeps the page current.
    if ($('live').dataset.state !== 'offline') setLive('polling');
  };
  stream.onmessage = (m) => {
    let e;
    try {
      e = JSON.parse(m.data);
    } catch {
      return;
    }
    onEvent(e);
  };
}

/** One manager event: remembered for the activity panel, steps shown at once, a refresh asked for. */
function onEvent(e) {
  if (e.type === 'recovery_step') trackStep(e);
  else {
    // Steps live in state.progress; the event list keeps everything else.
    if (e.type === 'failover' || e.type === 'switchover' || e.type === 'rejoin') finishProgress(e);
    state.events.unshift(e);
    state.events.length = Math.min(state.events.length, MAX_EVENTS);
  }
  renderActivity();
  scheduleRefresh();
}

function trackStep(e) {
  let p = state.progress.get(e.planId);
  if (!p) {
    p = { planId: e.planId, kind: e.kind, cluster: e.cluster, startedAt: e.at, steps: [], done: false };
    state.progress.set(e.planId, p);
  }
  if (e.phase === 'start') p.steps.push({ step: e.step, startedAt: e.at });
  else {
    const s = [...p.steps].reverse().find((x) => x.step === e.step && x.ok === undefined);
    if (s) Object.assign(s, { ok: e.ok, durationMs: e.durationMs, detail: e.detail });
    else p.steps.push({ step: e.step, startedAt: e.at, ok: e.ok, durationMs: e.durationMs, detail: e.detail });
  }
  // Keep only the last few recoveries.
  const keys = [...state.progress.keys()];
  for (const k of keys.slice(0, Math.max(0, keys.length - 3))) state.progress.delete(k);
}

/** The end event of a recovery (failover, switchover, rejoin) closes its progress entry. */
function finishProgress(e) {
  const open = [...state.progress.values()].reverse().find((p) => p.cluster === e.cluster && p.kind === e.type && !p.done);
  if (!open) return;
  Object.assign(open, { done: true, ok: e.ok, result: e });
}

// ---------------------------------------------------------------------------------------------
// Rendering

const HEALTH_TEXT = { healthy: 'healthy', degraded: 'degraded', down: 'down' };

function badge(kind, text, testid) {
  return h('span', { class: `badge ${kind}`, dataset: { testid } }, text);
}

function render() {
  renderOverview();
  const c = state.cluster;
  $('cluster').hidden = !c;
  if (c) {
    renderClusterHead(c);
    fill($('topology'), topologySvg(c));
    renderInstances(c);
    renderPlan(c);
    renderProblems(c);
    renderSql(c);
    renderRecoveries(c);
  }
  renderActivity();
  renderManagers();
  renderTokenButton();
  $('updated').textContent = state.lastUpdate ? `updated ${clock(state.lastUpdate)}` : '';
  document.title = c ? `Regent · ${c.name} · ${c.health}` : 'Regent';
}

function renderOverview() {
  fill(
    $('clusters-body'),
    state.clusters.length === 0
      ? h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No clusters configured.'))
      : state.clusters.map((c) =>
          h(
            'tr',
            {
              class: `clickable${c.name === state.selected ? ' selected' : ''}`,
              dataset: { testid: `cluster-row-${c.name}`, health: c.health },
              onclick: () => {
                state.selected = c.name;
                location.hash = `cluster=${encodeURIComponent(c.name)}`;
                void refresh();
              },
            },
            h('td', { class: 'strong' }, c.name),
            h('td', {}, badge(c.health, HEALTH_TEXT[c.health] ?? c.health)),
            h('td', { dataset: { testid: 'overview-primary' } }, c.primary ? `${nameOf(c, c.primary)} ` : h('span', { class: 'bad' }, 'none'), c.primary ? h('span', { class: 'muted mono' }, c.primary) : null),
            h('td', { class: 'mono' }, c.endpoints?.writer ?? '—'),
            h('td', { class: 'mono' }, c.endpoints?.reader ?? '—'),
            h('td', { class: 'mono' }, c.endpoints?.sql ?? '—'),
            h('td', {}, c.problems.length === 0 ? h('span', { class: 'muted' }, '0') : badge(c.problems.some((p) => p.severity === 'critical') ? 'down' : 'degraded', String(c.problems.length))),
          ),
        ),
  );
}

function renderClusterHead(c) {
  const primary = c.instances.find((i) => i.id === c.primary);
  const blocked = c.blockedUntil && c.blockedUntil > Date.now();
  const lr = c.state?.lastRecovery;
  const busy = Boolean(state.busy) || c.acting;
  fill(
    $('cluster-head'),
    h(
      'div',
      { class: 'head-main' },
      h('h2', { class: 'cluster-name' }, c.name, ' ', badge(c.health, HEALTH_TEXT[c.health] ?? c.health, 'cluster-health')),
      h(
        'div',
        { class: 'head-facts' },
        h(
          'span',
          {},
          'primary ',
          primary
            ? h('b', { class: 'primary-name', dataset: { testid: 'cluster-primary', name: primary.name, instance: primary.id } }, primary.name)
            : h('b', { class: 'bad primary-name', dataset: { testid: 'cluster-primary', name: '' } }, 'none'),
          primary ? h('span', { class: 'muted mono' }, ` ${primary.id}`) : null,
        ),
        h('span', { class: 'muted', title: 'why Regent considers this the primary' }, named(c.primaryEvidence, c)),
      ),
      h(
        'div',
        { class: 'head-facts small' },
        h('span', {}, 'automatic failover ', h('b', {}, c.automaticFailover ? 'on' : 'off')),
        c.routing ? h('span', { class: 'mono' }, `writer ${c.endpoints?.writer ?? '—'} · reader ${c.endpoints?.reader ?? '—'}${c.endpoints?.sql ? ` · sql ${c.endpoints.sql}` : ''}`) : null,
        lr ? h('span', {}, `last recovery: ${lr.kind} ${nameOf(c, lr.oldPrimary)} → ${lr.newPrimary ? nameOf(c, lr.newPrimary) : '—'} (${lr.outcome}, ${ago(lr.at)})`) : null,
        blocked
          ? h('span', { class: 'warn', dataset: { testid: 'blocked' } }, `automatic failover blocked until ${clock(c.blockedUntil)} (anti-flapping) — acknowledge to allow it again`)
          : null,
        c.acting ? h('span', { class: 'warn' }, 'an action is under way') : null,
      ),
    ),
    h(
      'div',
      { class: 'head-actions' },
      h('button', { type: 'button', class: 'btn btn-primary', dataset: { testid: 'switchover-button' }, disabled: busy || switchoverTargets(c).length === 0 || undefined, onclick: () => void switchover() }, 'Switchover…'),
      h('button', { type: 'button', class: `btn${blocked ? ' btn-warn' : ''}`, dataset: { testid: 'ack-button' }, disabled: busy || undefined, onclick: () => void ack() }, 'Ack'),
      h('button', { type: 'button', class: 'btn', dataset: { testid: 'remove-cluster-button' }, disabled: busy || undefined, onclick: () => void removeCluster() }, 'Remove…'),
    ),
  );
}

function renderInstances(c) {
  const fenced = new Set(c.state?.fenced ?? []);
  const busy = Boolean(state.busy) || c.acting;
  fill(
    $('instances-body'),
    c.instances.map((i) => {
      const st = instanceStatus(i, c);
      const r = i.replication;
      // A rejoin is what an orphan or a fenced former primary waits for.
      const canRejoin = i.role === 'orphan' || (fenced.has(i.id) && i.role !== 'primary' && i.role !== 'replica');
      return h(
        'tr',
        { dataset: { testid: `instance-${i.name}`, status: st.status, role: i.role } },
        h('td', {}, h('span', { class: `dot ${st.status}` }), h('b', {}, i.name), h('div', { class: 'muted mono small' }, i.id)),
        h('td', {}, i.role === 'primary' ? h('b', {}, 'primary') : i.role, i.role === 'replica' && i.source !== c.primary ? h('div', { class: 'small muted' }, `from ${nameOf(c, i.source)}`) : null, fenced.has(i.id) ? h('div', { class: 'small warn' }, 'fenced') : null),
        h('td', { class: `state st-${st.status}`, title: st.why }, st.status, h('div', { class: 'small muted why' }, named(st.why, c)), st.maintenance ? h('div', { class: 'small maint' }, `maintenance until ${clock(st.maintenanceUntil)}`) : null),
        h('td', {}, i.reachable && i.readOnly !== undefined ? (i.readOnly ? 'ON' : 'OFF') : '—'),
        h('td', {}, r ? `${r.ioThread} / ${r.sqlThread ? 'yes' : 'no'}` : '—', r?.lastIoError ? h('div', { class: 'small bad' }, `IO: ${r.lastIoError}`) : null, r?.lastSqlError ? h('div', { class: 'small bad' }, `SQL: ${r.lastSqlError}`) : null),
        h('td', { class: 'lag' }, r ? lagText(r.secondsBehind) : '—', r?.sqlDelay ? h('div', { class: 'small muted' }, `delayed ${r.sqlDelay} s`) : null),
        h('td', { class: 'mono small gtid', title: i.gtidExecuted ?? '' }, i.gtidExecuted || '—'),
        h('td', {}, i.promotion),
        h(
          'td',
          { class: 'actions' },
          canRejoin
            ? h('button', { type: 'button', class: 'btn btn-small', dataset: { testid: `rejoin-${i.name}` }, disabled: busy || !i.reachable || undefined, title: i.reachable ? 'make it a replica of the primary again' : 'unreachable: start it first', onclick: () => void rejoin(i) }, 'Rejoin…')
            : null,
          st.maintenance
            ? h('button', { type: 'button', class: 'btn btn-small', dataset: { testid: `maintenance-${i.name}`, on: 'true' }, disabled: busy || undefined, onclick: () => void maintenance(i, false) }, 'End maintenance')
            : h('button', { type: 'button', class: 'btn btn-small', dataset: { testid: `maintenance-${i.name}`, on: 'false' }, disabled: busy || undefined, onclick: () => void maintenance(i, true) }, 'Maintenance…'),
        ),
      );
    }),
  );
}

function renderPlan(c) {
  const p = state.plan;
  const el = $('plan');
  if (!p) return fill(el, h('p', { class: 'muted' }, 'loading…'));
  if (p.refusal) return fill(el, h('p', { class: 'muted', dataset: { testid: 'plan-refusal' } }, named(p.refusal, c)));
  const choice = p.choice;
  fill(
    el,
    choice.candidate
      ? h(
          'p',
          { class: 'plan-line' },
          `If ${nameOf(c, p.oldPrimary)} failed now, Regent would promote `,
          h('b', { dataset: { testid: 'plan-candidate', name: nameOf(c, choice.candidate) } }, nameOf(c, choice.candidate)),
          h('span', { class: 'muted mono' }, ` ${choice.candidate}`),
          choice.catchUpFrom ? ` after it catches up from ${nameOf(c, choice.catchUpFrom)}` : '',
          '.',
        )
      : h('p', { class: 'bad', dataset: { testid: 'plan-candidate', name: '' } }, `No replica could be promoted: ${named(choice.refusal, c) || 'none qualifies'}`),
    choice.reasons.length > 0 ? h('ul', { class: 'reasons' }, choice.reasons.map((r) => h('li', {}, named(r, c)))) : null,
    choice.rejected.length > 0
      ? [h('div', { class: 'small muted sub' }, 'never promoted now:'), h('ul', { class: 'rejected' }, choice.rejected.map((r) => h('li', {}, h('b', {}, nameOf(c, r.id)), `: ${named(r.why, c)}`)))]
      : null,
  );
}

function renderProblems(c) {
  const el = $('problems');
  if (c.problems.length === 0) return fill(el, h('p', { class: 'ok-text' }, '✓ no problems'));
  const order = { critical: 0, warning: 1, info: 2 };
  fill(
    el,
    h(
      'ul',
      { class: 'problems' },
      [...c.problems]
        .sort((a, b) => order[a.severity] - order[b.severity])
        .map((p) =>
          h(
            'li',
            { class: `problem ${p.severity}`, dataset: { testid: 'problem', code: p.code } },
            h('div', {}, badge(p.severity, p.severity), ' ', h('b', {}, p.code), p.instance ? h('span', { class: 'muted' }, ` · ${nameOf(c, p.instance)}`) : null),
            h('div', {}, named(p.summary, c)),
            // The facts behind the diagnosis, as the analysis wrote them (addresses a DBA can check).
            p.evidence.length > 0 ? h('ul', { class: 'evidence small', dataset: { testid: 'evidence' } }, p.evidence.map((e) => h('li', {}, e))) : null,
          ),
        ),
    ),
  );
}

/** Why statements went where they went, in the words of docs/sql-endpoint.md. */
const SQL_REASON = {
  read: 'reads',
  read_only_transaction: 'read-only transactions',
  hint: 'hint',
  write: 'writes',
  transaction: 'in a transaction',
  locking_read: 'locking reads',
  session_bound: 'session-bound',
  multi_statement: 'multi-statements',
  session_command: 'session commands',
  unsure: 'unsure',
  causal_wait: 'replica not caught up',
  no_replica: 'no replica',
  last_statement: 'after the previous statement',
};

/** The SQL endpoint: its address, sessions, and where statements went (replica / primary, by reason). */
function renderSql(c) {
  const address = c.endpoints?.sql;
  $('sql-card').hidden = !address;
  if (!address) return;
  const st = state.sql;
  if (!st) return fill($('sql'), h('p', { class: 'mono', dataset: { testid: 'sql-address' } }, address), h('p', { class: 'muted small' }, 'no counters (this manager does not run the endpoint, or /metrics is unreachable)'));
  const total = st.replica + st.primary;
  const pct = (n) => (total > 0 ? Math.round((100 * n) / total) : 0);
  const reasons = st.statements.filter((x) => x.count > 0).sort((a, b) => b.count - a.count);
  const waits = (st.causal.caught_up ?? 0) + (st.causal.timeout ?? 0) + (st.causal.error ?? 0);
  fill(
    $('sql'),
    h('p', { class: 'sql-head' }, h('span', { class: 'mono', dataset: { testid: 'sql-address' } }, address), h('span', { class: 'muted small', dataset: { testid: 'sql-sessions', count: st.sessions } }, ` · ${st.sessions} session${st.sessions === 1 ? '' : 's'}`)),
    h(
      'div',
      { class: 'split', title: `${st.replica} statements on replicas, ${st.primary} on the primary`, dataset: { testid: 'sql-split' } },
      h('span', { class: 'split-replica', style: { width: `${pct(st.replica)}%` } }),
      h('span', { class: 'split-primary', style: { width: `${total > 0 ? 100 - pct(st.replica) : 0}%` } }),
    ),
    h(
      'p',
      { class: 'small' },
      h('span', { class: 'key key-replica' }),
      'replicas ',
      h('b', { dataset: { testid: 'sql-replica', count: st.replica } }, String(st.replica)),
      ` (${pct(st.replica)} %)  `,
      h('span', { class: 'key key-primary' }),
      'primary ',
      h('b', { dataset: { testid: 'sql-primary', count: st.primary } }, String(st.primary)),
      total > 0 ? ` (${100 - pct(st.replica)} %)` : '',
    ),
    reasons.length > 0
      ? h(
          'table',
          { class: 'table compact', dataset: { testid: 'sql-reasons' } },
          h('tbody', {}, reasons.map((x) => h('tr', { dataset: { testid: `sql-reason-${x.route}-${x.reason}`, count: x.count } }, h('td', {}, x.route), h('td', {}, SQL_REASON[x.reason] ?? x.reason), h('td', { class: 'num' }, String(x.count))))),
        )
      : h('p', { class: 'muted small' }, 'no statements yet'),
    waits > 0 ? h('p', { class: 'small muted' }, `read-your-writes waits: ${st.causal.caught_up ?? 0} caught up, ${st.causal.timeout ?? 0} timed out${st.causal.error ? `, ${st.causal.error} failed` : ''}`) : null,
    st.authFailures > 0 ? h('p', { class: 'small warn' }, `${st.authFailures} refused login${st.authFailures === 1 ? '' : 's'}`) : null,
  );
}

/** Live activity: the recovery under way (or the last one seen) step by step, then recent events. */
function renderActivity() {
  const c = state.cluster;
  const mine = [...state.progress.values()].filter((p) => !c || p.cluster === c.name).reverse();
  fill(
    $('progress'),
    mine.length === 0
      ? h('p', { class: 'muted small' }, 'No recovery since this page was opened. Steps appear here as they run.')
      : [progressItem(mine[0], c), ...mine.slice(1).map((p) => progressLine(p, c))],
  );
  // Steps are shown above; topology events only when the primary changed (one per probe change is noise).
  const events = [];
  let lastPrimary;
  for (const e of [...state.events].reverse()) {
    if (c && e.cluster && e.cluster !== c.name) continue;
    if (e.type === 'topology') {
      if (e.primary === lastPrimary) continue;
      lastPrimary = e.primary;
    }
    events.unshift(e);
  }
  fill($('events'), events.slice(0, 10).map((e) => h('li', { class: `ev ev-${e.type}` }, h('span', { class: 'muted mono' }, clock(e.at)), ' ', describeEvent(e, c))));
}

/** The latest recovery, step by step, as its recovery_step events arrived. */
function progressItem(p, c) {
  return h(
    'div',
    { class: `progress ${p.done ? (p.ok ? 'ok' : 'failed') : 'running'}`, dataset: { testid: 'progress-item', kind: p.kind, done: String(p.done) } },
    h('div', { class: 'progress-title' }, h('b', {}, p.kind), ` · ${clock(p.startedAt)} · `, progressOutcome(p, c)),
    h(
      'ol',
      { class: 'steps' },
      p.steps.map((s) =>
        h(
          'li',
          { class: s.ok === undefined ? 'running' : s.ok ? 'ok' : 'failed', dataset: { testid: 'progress-step', step: s.step } },
          h('span', { class: 'step-icon' }, s.ok === undefined ? '◌' : s.ok ? '✓' : '✕'),
          h('span', { class: 'step-name' }, s.step),
          h('span', { class: 'step-dur' }, s.ok === undefined ? '' : duration(s.durationMs)),
          s.detail ? h('div', { class: 'step-detail small muted' }, named(s.detail, c)) : null,
        ),
      ),
    ),
  );
}

/** An earlier recovery of this page's life, in one line (the timeline has its details). */
function progressLine(p, c) {
  return h('div', { class: 'progress-line small', dataset: { testid: 'progress-item', kind: p.kind, done: String(p.done) } }, h('b', {}, p.kind), ` · ${clock(p.startedAt)} · ${p.steps.length} steps · `, progressOutcome(p, c));
}

function progressOutcome(p, c) {
  if (!p.done) return h('span', { class: 'running-text' }, 'running…');
  if (p.ok) return h('span', { class: 'ok-text' }, `done${p.result?.newPrimary ? `: ${nameOf(c, p.result.newPrimary)} is the primary` : ''}`);
  return h('span', { class: 'bad' }, `failed${p.result?.error ? `: ${named(p.result.error, c)}` : ''}`);
}

function describeEvent(e, c) {
  const n = (id) => nameOf(c, id);
  switch (e.type) {
    case 'problem_started':
      return `problem: ${e.problem?.code}${e.problem?.instance ? ` on ${n(e.problem.instance)}` : ''}`;
    case 'problem_resolved':
      return `resolved: ${e.problem?.code}${e.problem?.instance ? ` on ${n(e.problem.instance)}` : ''}`;
    case 'failover':
      return e.ok ? `failover ${n(e.oldPrimary)} → ${n(e.newPrimary)} in ${duration(e.durationMs)}` : `failover of ${n(e.oldPrimary)} failed: ${e.error ?? ''}`;
    case 'switchover':
      return e.ok ? `switchover ${n(e.oldPrimary)} → ${n(e.newPrimary)}, writes paused ${duration(e.writePauseMs)}` : `switchover failed${e.rolledBack ? ' (rolled back)' : ''}: ${e.error ?? ''}`;
    case 'rejoin':
      return e.ok ? `rejoin of ${n(e.instance)}: ${e.action ?? 'done'}` : `rejoin of ${n(e.instance)} failed: ${e.error ?? ''}`;
    case 'repair':
      return `repair of ${n(e.instance)}: ${e.action ?? ''}`;
    case 'topology':
      return e.primary ? `primary: ${n(e.primary)}` : 'no primary';
    case 'leadership':
      return e.leader ? 'this manager became the leader' : 'this manager is no longer the leader';
    case 'ack':
      return 'last recovery acknowledged';
    case 'maintenance':
      return e.until ? `${n(e.instance)} in maintenance until ${clock(e.until)}` : `${n(e.instance)} out of maintenance`;
    case 'promotion_rule':
      return `${n(e.instance)}: promotion ${e.rule}`;
    default:
      return e.type;
  }
}

/** The recoveries of the journal, newest first, each as a waterfall of its steps. */
function renderRecoveries(c) {
  const el = $('recoveries');
  if (state.recoveries.length === 0) return fill(el, h('p', { class: 'muted' }, 'No recovery in the journal.'));
  fill(
    el,
    state.recoveries.map((r) => {
      const plan = r.plan ?? {};
      const oldPrimary = plan.oldPrimary ?? plan.primary;
      const target = r.newPrimary ?? plan.target ?? plan.choice?.candidate;
      const outcome = r.outcome ?? 'running';
      const subject = r.kind === 'rejoin' ? `${nameOf(c, plan.instance)} → replica of ${nameOf(c, plan.primary)}` : `${nameOf(c, oldPrimary)} → ${target ? nameOf(c, target) : '?'}`;
      // The span of the steps; a journal's own duration can be shorter than that (or 0), never trust it alone.
      const stepsEnd = Math.max(0, ...r.steps.map((s) => s.startedAt - r.startedAt + (s.durationMs ?? Date.now() - s.startedAt)));
      const total = Math.max(r.durationMs ?? 0, stepsEnd);
      const end = Math.max(1, total);
      return h(
        'article',
        { class: `recovery ${outcome}`, dataset: { testid: 'recovery', kind: r.kind, outcome, newPrimary: r.newPrimary ? nameOf(c, r.newPrimary) : '' } },
        h(
          'header',
          { class: 'recovery-head' },
          h('b', { class: 'recovery-kind' }, r.kind),
          h('span', { class: 'recovery-subject' }, subject),
          badge(outcome === 'success' ? 'healthy' : outcome === 'running' ? 'info' : 'down', outcome),
          h('span', { class: 'muted' }, r.outcome ? duration(total) : 'running…'),
          h('span', { class: 'muted', title: new Date(r.startedAt).toISOString() }, `${dateTime(r.startedAt)} (${ago(r.startedAt)})`),
        ),
        plan.trigger ? h('div', { class: 'small muted' }, `trigger: ${plan.trigger}`) : null,
        r.detail && outcome !== 'success' ? h('div', { class: 'small bad' }, named(r.detail, c)) : null,
        h(
          'div',
          { class: 'waterfall' },
          r.steps.map((s) => {
            const left = ((s.startedAt - r.startedAt) / end) * 100;
            const width = ((s.durationMs ?? Date.now() - s.startedAt) / end) * 100;
            return h(
              'div',
              { class: `wf-row ${s.ok === undefined ? 'running' : s.ok ? 'ok' : 'failed'}`, title: named(s.detail, c) },
              h('span', { class: 'wf-name' }, s.step),
              h('span', { class: 'wf-track' }, h('span', { class: 'wf-bar', style: { left: `${Math.max(0, Math.min(99, left)).toFixed(2)}%`, width: `${Math.max(0.6, Math.min(100 - left, width)).toFixed(2)}%` } })),
              h('span', { class: 'wf-dur' }, duration(s.durationMs)),
              h('span', { class: 'wf-detail small muted' }, named(s.detail, c)),
            );
          }),
        ),
      );
    }),
  );
}

function renderManagers() {
  const self = state.managers.find((m) => m.self);
  const leader = state.managers.find((m) => m.leader);
  const el = $('manager-info');
  if (!self) return fill(el);
  fill(
    el,
    h('span', { class: 'mono' }, self.id),
    ' · ',
    self.leader ? h('b', { class: 'ok-text' }, 'leader') : h('span', { class: 'warn', title: 'actions must go to the leader' }, `follower${leader ? ` (leader: ${leader.id})` : ''}`),
    state.managers.length > 1 ? ` · ${state.managers.length} managers` : '',
  );
}

function renderTokenButton() {
  const b = $('token-button');
  const has = Boolean(token.get());
  b.textContent = has ? 'API token ✓' : 'API token';
  b.title = has ? 'a token is kept for this tab; click to change or forget it' : 'actions need the API token';
  b.dataset.set = String(has);
}

function renderBusy() {
  // Action buttons are disabled while an action sent from this page runs.
  if (state.cluster) {
    renderClusterHead(state.cluster);
    renderInstances(state.cluster);
  }
}

// ---------------------------------------------------------------------------------------------
// Start

window.addEventListener('hashchange', () => {
  const name = decodeURIComponent(location.hash.replace(/^#cluster=/, ''));
  if (name && name !== state.selected) {
    state.selected = name;
    void refresh();
  }
});

setLive('connecting');
renderTokenButton();
connectEvents();
void refresh();
setInterval(() => void refresh(), POLL_MS);
