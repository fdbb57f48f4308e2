// The topology graph: the primary at the top, each replica under the instance it replicates from,
// an arrow from source to replica, and everything that replicates from nobody in the cluster (a
// former primary waiting for a rejoin, an instance Regent cannot reach) in a band underneath.
import { s } from './dom.js';

const NODE_W = 212;
const NODE_H = 92;
const SLOT_W = 236; // horizontal room per leaf
const LEVEL_H = 142; // vertical distance between levels
const MARGIN = 14;

/**
 * What colour an instance gets, and why, in one place (the graph and the table use it):
 * healthy, lagging (behind, or its IO thread reconnecting), broken (replication stopped or failed,
 * a read_only primary, an orphan) or unreachable.
 */
export function instanceStatus(inst, cluster) {
  const problems = (cluster.problems ?? []).filter((p) => p.instance === inst.id);
  const until = cluster.state?.maintenance?.[inst.id];
  const maintenance = typeof until === 'number' && until > Date.now();
  const base = { maintenance, maintenanceUntil: maintenance ? until : undefined, problems };
  if (!inst.reachable) return { ...base, status: 'unreachable', why: `unreachable: ${shortError(inst)}` };
  const r = inst.replication;
  if (inst.role === 'primary') {
    if (inst.readOnly) return { ...base, status: 'broken', why: 'primary is read_only: nobody can write' };
    return { ...base, status: problems.some((p) => p.severity === 'critical') ? 'broken' : 'healthy', why: 'writable primary' };
  }
  if (!r) return { ...base, status: 'broken', why: inst.role === 'orphan' ? 'replicates from nobody (waiting for a rejoin?)' : 'not part of the topology' };
  if (r.lastSqlError || r.lastIoError) return { ...base, status: 'broken', why: `replication error: ${r.lastSqlError ?? r.lastIoError}` };
  if (!r.sqlThread || r.ioThread === 'no') return { ...base, status: 'broken', why: `replication stopped (IO ${r.ioThread}, SQL ${r.sqlThread ? 'yes' : 'no'})` };
  if (problems.some((p) => p.severity === 'critical')) return { ...base, status: 'broken', why: problems.find((p) => p.severity === 'critical').summary };
  if (r.ioThread !== 'yes') return { ...base, status: 'lagging', why: `IO thread ${r.ioThread}` };
  if (problems.some((p) => p.code === 'ReplicaLagging')) return { ...base, status: 'lagging', why: `lagging ${lagText(r.secondsBehind)}` };
  return { ...base, status: 'healthy', why: `replicating, lag ${lagText(r.secondsBehind)}` };
}

export function lagText(seconds) {
  return seconds === null || seconds === undefined ? '?' : `${seconds} s`;
}

/** A probe error without the address the node already shows ("127.0.0.1:3306: connection refused ..."). */
export function shortError(inst) {
  const e = inst.error ?? 'unreachable';
  return e.startsWith(`${inst.id}: `) ? e.slice(inst.id.length + 2) : e;
}

/** Cuts a text to fit a node (SVG has no ellipsis); the full text is in the node's tooltip. */
function fit(text, max) {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Tree layout: each leaf gets one slot, a parent sits centred over its children. Returns the
 * positions (centre x, top y) of every instance and the height the graph needs.
 */
function layout(cluster) {
  const byId = new Map(cluster.instances.map((i) => [i.id, i]));
  const children = new Map(cluster.instances.map((i) => [i.id, []]));
  const parentOf = new Map();
  for (const i of cluster.instances) {
    // A replica hangs under its source when that source is an instance of this cluster; the
    // primary never hangs under anything (a stale replication setting must not move it).
    if (i.source && byId.has(i.source) && i.source !== i.id && i.role !== 'primary') {
      parentOf.set(i.id, i.source);
      children.get(i.source).push(i.id);
    }
  }
  const placed = new Map();
  const seen = new Set();
  let nextSlot = 0;
  // Places a subtree; returns its centre x. `seen` guards against replication cycles.
  const place = (id, depth, band) => {
    seen.add(id);
    const kids = children.get(id).filter((k) => !seen.has(k));
    let x;
    if (kids.length === 0) x = MARGIN + nextSlot++ * SLOT_W + SLOT_W / 2;
    else {
      const xs = kids.map((k) => place(k, depth + 1, band));
      x = (xs[0] + xs[xs.length - 1]) / 2;
    }
    placed.set(id, { x, depth, band });
    return x;
  };
  let maxDepth = 0;
  const primary = cluster.primary && byId.has(cluster.primary) ? cluster.primary : undefined;
  if (primary) place(primary, 0, 'main');
  // Everything not under the primary: roots in config order, each with whatever replicates from it.
  const detached = cluster.instances.filter((i) => !seen.has(i.id) && (!parentOf.has(i.id) || !byId.has(parentOf.get(i.id))));
  const mainSlots = nextSlot;
  for (const p of placed.values()) maxDepth = Math.max(maxDepth, p.depth);
  const bandTop = primary ? maxDepth + 1 : 0;
  // The detached band starts at the left again, under the main tree.
  nextSlot = 0;
  for (const i of detached) if (!seen.has(i.id)) place(i.id, 0, 'detached');
  // Anything still unplaced sits in a cycle: put it in the band too.
  for (const i of cluster.instances) if (!seen.has(i.id)) place(i.id, 0, 'detached');
  let bandDepth = -1;
  for (const [, p] of placed) {
    if (p.band === 'detached') {
      p.depth += bandTop;
      bandDepth = Math.max(bandDepth, p.depth);
    }
  }
  const slots = Math.max(mainSlots, nextSlot, 1);
  const levels = Math.max(maxDepth, bandDepth) + 1;
  const hasBand = [...placed.values()].some((p) => p.band === 'detached') && primary !== undefined;
  const y = (p) => MARGIN + p.depth * LEVEL_H + (hasBand && p.band === 'detached' ? 26 : 0);
  for (const p of placed.values()) p.y = y(p);
  return {
    placed,
    parentOf,
    width: slots * SLOT_W + 2 * MARGIN,
    height: MARGIN * 2 + (levels - 1) * LEVEL_H + NODE_H + (hasBand ? 26 : 0),
    band: hasBand ? MARGIN + bandTop * LEVEL_H - 4 : undefined,
  };
}

/** One instance as an SVG group: coloured frame, name and role, address, replication, read_only. */
function nodeGroup(inst, st, pos, cluster) {
  const x = pos.x - NODE_W / 2;
  const y = pos.y;
  const r = inst.replication;
  const role = inst.role === 'primary' ? 'PRIMARY' : inst.role;
  let line3;
  if (!inst.reachable) line3 = fit(`✕ ${shortError(inst)}`, 31);
  else if (inst.role === 'primary') {
    const ss = inst.semiSync;
    line3 = `writable${ss?.primaryActive ? ` · semi-sync ×${ss.primaryClients}` : ''}`;
    if (inst.readOnly) line3 = 'read_only primary!';
  } else if (r) line3 = fit(`IO ${r.ioThread} · SQL ${r.sqlThread ? 'yes' : 'no'} · lag ${lagText(r.secondsBehind)}`, 32);
  else line3 = 'no replication';
  const flags = [];
  if (inst.reachable && inst.readOnly !== undefined) flags.push(`read_only ${inst.readOnly ? 'ON' : 'OFF'}`);
  if (st.maintenance) flags.push('maintenance');
  if (inst.promotion && inst.promotion !== 'neutral') flags.push(`promotion ${inst.promotion}`);
  if (st.problems.length > 0) flags.push(`⚠ ${st.problems.length}`);
  const tooltip = [`${inst.name} (${inst.id})`, `role: ${inst.role}`, st.why, ...st.problems.map((p) => `[${p.severity}] ${p.summary}`)].join('\n');
  return s(
    'g',
    {
      class: `tnode ${st.status}${st.maintenance ? ' in-maintenance' : ''}${inst.role === 'primary' ? ' is-primary' : ''}`,
      transform: `translate(${x},${y})`,
      dataset: { testid: `node-${inst.name}`, name: inst.name, instance: inst.id, role: inst.role, status: st.status },
    },
    s('title', {}, tooltip),
    s('rect', { class: 'frame', width: NODE_W, height: NODE_H, rx: 9 }),
    s('rect', { class: 'stripe', width: 6, height: NODE_H - 2, x: 1, y: 1, rx: 4 }),
    s('circle', { class: 'status-dot', cx: 20, cy: 21, r: 5 }),
    s('text', { class: 'name', x: 32, y: 26 }, fit(inst.name, 16)),
    s('rect', { class: `role-pill role-${inst.role}`, x: NODE_W - 78, y: 10, width: 68, height: 19, rx: 9.5 }),
    s('text', { class: `role-text role-${inst.role}`, x: NODE_W - 44, y: 23.5, 'text-anchor': 'middle' }, role),
    s('text', { class: 'addr', x: 16, y: 46 }, fit(inst.id, 32)),
    s('text', { class: 'line', x: 16, y: 64 }, line3),
    s('text', { class: 'flags', x: 16, y: 81 }, fit(flags.join(' · '), 36)),
    st.maintenance && s('rect', { class: 'maint-frame', width: NODE_W, height: NODE_H, rx: 9 }),
    cluster.decidedPrimary === inst.id && inst.role !== 'primary' ? s('text', { class: 'flags', x: NODE_W - 10, y: 46, 'text-anchor': 'end' }, 'decided primary') : null,
  );
}

/** The whole graph as an <svg>. */
export function topologySvg(cluster) {
  const { placed, parentOf, width, height, band } = layout(cluster);
  const byId = new Map(cluster.instances.map((i) => [i.id, i]));
  const statuses = new Map(cluster.instances.map((i) => [i.id, instanceStatus(i, cluster)]));
  const defs = s(
    'defs',
    {},
    ['healthy', 'lagging', 'broken', 'unreachable'].map((c) =>
      s('marker', { id: `arrow-${c}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', class: `arrow ${c}` }, s('path', { d: 'M0,0 L10,5 L0,10 z' })),
    ),
  );
  const edges = [];
  for (const [child, parent] of parentOf) {
    const a = placed.get(parent);
    const b = placed.get(child);
    if (!a || !b) continue;
    const st = statuses.get(child).status;
    const x1 = a.x;
    const y1 = a.y + NODE_H;
    const x2 = b.x;
    const y2 = b.y - 2;
    const my = (y1 + y2) / 2;
    const r = byId.get(child).replication;
    edges.push(
      s(
        'g',
        { class: `edge ${st}`, dataset: { testid: `edge-${byId.get(parent).name}-${byId.get(child).name}` } },
        s('path', { d: `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`, 'marker-end': `url(#arrow-${st})` }),
        r && b.y > a.y
          ? [
              s('rect', { class: 'edge-label-bg', x: (x1 + x2) / 2 - 34, y: my - 10, width: 68, height: 18, rx: 9 }),
              s('text', { class: 'edge-label', x: (x1 + x2) / 2, y: my + 3, 'text-anchor': 'middle' }, `lag ${lagText(r.secondsBehind)}`),
            ]
          : null,
      ),
    );
  }
  const nodes = cluster.instances.filter((i) => placed.has(i.id)).map((i) => nodeGroup(i, statuses.get(i.id), placed.get(i.id), cluster));
  return s(
    'svg',
    { xmlns: 'http://www.w3.org/2000/svg', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `topology of cluster ${cluster.name}` },
    defs,
    band !== undefined
      ? [
          s('line', { class: 'band-line', x1: 4, x2: width - 4, y1: band, y2: band }),
          s('text', { class: 'band-label', x: 8, y: band + 16 }, 'not replicating from the primary'),
        ]
      : null,
    edges,
    nodes,
  );
}
