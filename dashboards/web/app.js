// SPDX-License-Identifier: Apache-2.0
// meshtrace's own page: service map, RED tables, traces and agent health, read from the agent's
// JSON API (/api/graph, /api/stats, /api/traces). No dependencies, no network beyond the agent.
// Everything shown is built with DOM calls (never innerHTML), so names seen on the wire stay text.
(function () {
  'use strict';

  const SVGNS = 'http://www.w3.org/2000/svg';
  const NODE_W = 176, NODE_H = 50, COL_GAP = 210, ROW_GAP = 26, SUBCOL_GAP = 34;
  const HISTORY = 60; // samples kept per service for the sparklines
  const LABELS_MAX_EDGES = 36; // more edges than this: labels only on hover or selection
  const PALETTE = ['#3b82f6', '#0d9488', '#f59e0b', '#8b5cf6', '#ec4899', '#10b981', '#f97316',
    '#6366f1', '#84cc16', '#06b6d4', '#e11d48', '#a855f7'];

  const state = {
    graph: null, stats: null, prevStats: null, prevStatsAt: 0, rates: {},
    traces: { recent: [], slowest: [] }, tab: 'recent',
    traceId: null, trace: null, spanId: null,
    selected: null, filter: '',
    sort: { services: { key: 'rate_per_s', dir: -1 }, calls: { key: 'rate_per_s', dir: -1 } },
    history: new Map(), refreshMs: 2000, timer: 0, inflight: false,
    view: { s: 1, tx: 0, ty: 0, moved: false }, layoutKey: '', layout: null,
  };

  // ---------------------------------------------------------------- small helpers
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function s(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function append(e, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      e.appendChild(typeof k === 'string' || typeof k === 'number' ? document.createTextNode(String(k)) : k);
    }
  }
  const $ = (id) => document.getElementById(id);
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);

  function fmtRate(r) {
    r = num(r);
    if (r === 0) return '0';
    if (r < 0.01) return '<0.01';
    if (r < 10) return r.toFixed(2);
    if (r < 100) return r.toFixed(1);
    if (r < 10000) return Math.round(r).toString();
    return (r / 1000).toFixed(1) + 'k';
  }
  function fmtCount(n) {
    n = num(n);
    if (n < 10000) return String(n);
    if (n < 1e6) return (n / 1e3).toFixed(n < 1e5 ? 1 : 0) + 'k';
    if (n < 1e9) return (n / 1e6).toFixed(n < 1e7 ? 2 : 1) + 'M';
    return (n / 1e9).toFixed(2) + 'G';
  }
  function fmtMs(ms) {
    ms = num(ms);
    if (ms === 0) return '0';
    if (ms < 0.01) return (ms * 1000).toFixed(1) + ' µs';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 10) return ms.toFixed(1) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
    return (ms / 60000).toFixed(1) + ' min';
  }
  function fmtPct(f) {
    f = num(f) * 100;
    if (f === 0) return '0%';
    if (f < 0.1) return '<0.1%';
    if (f < 10) return f.toFixed(1) + '%';
    return Math.round(f) + '%';
  }
  function fmtBytes(b) {
    b = num(b);
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i === 0 ? String(b) : b.toFixed(b < 10 ? 1 : 0)) + ' ' + u[i];
  }
  function fmtTime(ms) {
    const d = new Date(ms);
    const p = (n, w) => String(n).padStart(w || 2, '0');
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
  }
  function health(errorRate, rate) {
    if (!num(rate)) return 'idle';
    if (errorRate > 0.05) return 'bad';
    if (errorRate > 0.01) return 'warn';
    return 'ok';
  }
  function colorOf(name) {
    let x = 2166136261;
    for (let i = 0; i < name.length; i++) x = Math.imul(x ^ name.charCodeAt(i), 16777619);
    return PALETTE[(x >>> 0) % PALETTE.length];
  }
  function truncate(text, max) {
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  async function getJSON(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 8000);
    try {
      const r = await fetch(url, { signal: ctl.signal, cache: 'no-store' });
      if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
      return await r.json();
    } finally {
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------- tooltip
  const tip = $('tip');
  function showTip(ev, build) {
    tip.replaceChildren(...build());
    tip.hidden = false;
    moveTip(ev);
  }
  function moveTip(ev) {
    if (tip.hidden) return;
    const pad = 14, w = tip.offsetWidth, ht = tip.offsetHeight;
    let x = ev.clientX + pad, y = ev.clientY + pad;
    if (x + w > window.innerWidth - 4) x = ev.clientX - w - pad;
    if (y + ht > window.innerHeight - 4) y = ev.clientY - ht - pad;
    tip.style.left = Math.max(4, x) + 'px';
    tip.style.top = Math.max(4, y) + 'px';
  }
  function hideTip() { tip.hidden = true; }
  function tipRows(rows) {
    return h('table', null, rows.map(([k, v]) => h('tr', null, h('td', { text: k }), h('td', { text: v }))));
  }

  // ---------------------------------------------------------------- graph model + layout
  function model(graph) {
    const nodes = new Map();
    for (const n of graph.nodes || []) {
      const id = String(n.id);
      nodes.set(id, { id, name: String(n.name || n.id), ns: n.namespace ? String(n.namespace) : '', kind: n.kind || 'service',
        requests: num(n.requests), failed: num(n.failed), inRate: 0, inFailRate: 0, outRate: 0 });
    }
    const edges = [];
    for (const e of graph.edges || []) {
      const c = String(e.client), sv = String(e.server);
      for (const id of [c, sv]) {
        if (!nodes.has(id)) {
          nodes.set(id, { id, name: id, kind: id === 'user' ? 'user' : 'service', requests: 0,
            failed: 0, inRate: 0, inFailRate: 0, outRate: 0 });
        }
      }
      const edge = Object.assign({}, e, { client: c, server: sv });
      edge.key = c + '\u2192' + sv + '\u2192' + (e.protocol || '');
      edges.push(edge);
      nodes.get(sv).inRate += num(e.rate_per_s);
      nodes.get(sv).inFailRate += num(e.rate_per_s) * num(e.error_rate);
      nodes.get(c).outRate += num(e.rate_per_s);
    }
    const services = new Map();
    for (const sv of graph.services || []) services.set(String(sv.name), sv);
    return { nodes, edges, services };
  }

  // Layered layout: longest path from the callers (users first), cycles broken where a
  // depth-first walk meets them, then a few barycentre sweeps to untangle each layer. A layer
  // taller than the map allows wraps into several sub-columns.
  function layout(m) {
    const ids = [...m.nodes.keys()].sort((a, b) => {
      const ka = m.nodes.get(a).kind === 'user' ? 0 : 1, kb = m.nodes.get(b).kind === 'user' ? 0 : 1;
      return ka - kb || a.localeCompare(b);
    });
    const out = new Map(ids.map((id) => [id, []]));
    const inc = new Map(ids.map((id) => [id, []]));
    for (const e of m.edges) {
      if (e.client === e.server) continue;
      out.get(e.client).push(e.server);
      inc.get(e.server).push(e.client);
    }
    // Depth-first order; edges to a node on the stack are back edges (ignored for ranking).
    const mark = new Map(), order = [], back = new Set();
    const visit = (root) => {
      const stack = [[root, 0]];
      mark.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const next = out.get(top[0])[top[1]++];
        if (next === undefined) {
          mark.set(top[0], 2);
          order.push(top[0]);
          stack.pop();
        } else if (!mark.has(next)) {
          mark.set(next, 1);
          stack.push([next, 0]);
        } else if (mark.get(next) === 1) {
          back.add(top[0] + '\u0000' + next);
        }
      }
    };
    for (const id of ids) if (!inc.get(id).length && !mark.has(id)) visit(id);
    for (const id of ids) if (!mark.has(id)) visit(id);
    order.reverse(); // a topological order of the graph without back edges
    const rank = new Map();
    for (const id of order) {
      let r = 0;
      for (const p of inc.get(id)) {
        if (back.has(p + '\u0000' + id)) continue;
        if (rank.has(p)) r = Math.max(r, rank.get(p) + 1);
      }
      rank.set(id, r);
    }
    const layers = [];
    for (const id of ids) {
      const r = rank.get(id);
      (layers[r] = layers[r] || []).push(id);
    }
    for (let i = 0; i < layers.length; i++) layers[i] = layers[i] || [];
    const pos = new Map();
    const index = () => layers.forEach((l) => l.forEach((id, i) => pos.set(id, i / Math.max(1, l.length - 1))));
    index();
    const bary = (id, nbrs) => {
      const v = nbrs.get(id).filter((n) => pos.has(n)).map((n) => pos.get(n));
      return v.length ? v.reduce((a, b) => a + b, 0) / v.length : pos.get(id);
    };
    for (let sweep = 0; sweep < 6; sweep++) {
      const down = sweep % 2 === 0;
      const seq = down ? layers.slice(1) : layers.slice(0, -1).reverse();
      for (const l of seq) {
        const b = new Map(l.map((id) => [id, bary(id, down ? inc : out)]));
        l.sort((a, c) => b.get(a) - b.get(c) || a.localeCompare(c));
        l.forEach((id, i) => pos.set(id, i / Math.max(1, l.length - 1)));
      }
    }
    // Coordinates. A tall layer wraps into sub-columns; the wrap height is the one whose
    // drawing fits the map at the largest scale. Without edge labels columns sit closer.
    const colGap = m.edges.length > LABELS_MAX_EDGES ? 120 : COL_GAP;
    const place = (maxRows) => {
      const xy = new Map();
      let x = 0, maxY = 0, minY = 0;
      for (const l of layers) {
        const cols = Math.max(1, Math.ceil(l.length / maxRows));
        const rows = Math.ceil(l.length / cols);
        for (let i = 0; i < l.length; i++) {
          const c = Math.floor(i / rows), r = i % rows;
          const inCol = Math.min(rows, l.length - c * rows);
          const y = (r - (inCol - 1) / 2) * (NODE_H + ROW_GAP) + (cols > 1 && c % 2 ? (NODE_H + ROW_GAP) / 2 : 0);
          xy.set(l[i], { x: x + c * (NODE_W + SUBCOL_GAP), y });
          maxY = Math.max(maxY, y);
          minY = Math.min(minY, y);
        }
        x += cols * NODE_W + (cols - 1) * SUBCOL_GAP + colGap;
      }
      return { xy, width: Math.max(NODE_W, x - colGap), top: minY - NODE_H / 2, bottom: maxY + NODE_H / 2 };
    };
    const W = svgEl.clientWidth || 1000, H = svgEl.clientHeight || 560;
    const tallest = Math.max(...layers.map((l) => l.length));
    let best = null, bestScale = -1;
    for (let rows = Math.min(tallest, 4); rows <= tallest; rows++) {
      const cand = place(rows);
      const sc = Math.min(W / (cand.width + 72), H / (cand.bottom - cand.top + 112));
      if (sc > bestScale + 1e-6) {
        best = cand;
        bestScale = sc;
      }
    }
    return best;
  }

  // ---------------------------------------------------------------- service map
  const svgEl = $('map');
  let viewport = null;

  function applyView() {
    if (viewport) viewport.setAttribute('transform', `translate(${state.view.tx},${state.view.ty}) scale(${state.view.s})`);
  }
  function fit() {
    const L = state.layout;
    if (!L) return;
    const W = svgEl.clientWidth || 800, H = svgEl.clientHeight || 500, pad = 36;
    const bw = L.width + 2 * pad, bh = L.bottom - L.top + 2 * pad + 40;
    const sc = Math.max(0.2, Math.min(1.5, W / bw, H / bh));
    state.view.s = sc;
    state.view.tx = (W - L.width * sc) / 2;
    state.view.ty = H / 2 - ((L.top + L.bottom) / 2 + 14) * sc;
    state.view.moved = false;
    applyView();
  }

  function edgePath(a, b, offset) {
    const ax = a.x + NODE_W, ay = a.y + offset, bx = b.x, by = b.y + offset;
    if (bx > ax + 8) {
      const dx = Math.max(40, (bx - ax) / 2);
      return { d: `M${ax},${ay} C${ax + dx},${ay} ${bx - dx},${by} ${bx},${by}`,
        mx: (ax + bx) / 2, my: (ay + by) / 2 };
    }
    // Backwards or within one column: loop below both nodes.
    const sx = a.x + NODE_W / 2 + offset, tx = b.x + NODE_W / 2 - offset;
    const sy = a.y + NODE_H / 2, ty = b.y + NODE_H / 2;
    const dip = Math.max(sy, ty) + 46 + Math.abs(sx - tx) * 0.12;
    return { d: `M${sx},${sy} C${sx},${dip} ${tx},${dip} ${tx},${ty}`, mx: (sx + tx) / 2, my: dip - 10 };
  }

  function renderMap() {
    const g = state.graph;
    const empty = $('map-empty');
    if (!g) return;
    const m = model(g);
    $('map-sub').textContent = `${m.nodes.size} nodes · ${m.edges.length} edges · rates over the last ${num(g.window_s) || '?'} s`;
    if (!m.nodes.size) {
      svgEl.replaceChildren();
      viewport = null;
      empty.hidden = false;
      empty.textContent = 'No calls seen yet. Calls between processes on this node, and to and from it, appear here as they happen.';
      return;
    }
    empty.hidden = true;
    const wrap = $('map-wrap');
    const key = [...m.nodes.keys()].sort().join('|') + '#' + m.edges.map((e) => e.key).sort().join('|');
    if (key !== state.layoutKey) {
      // Big maps get a taller box, as tall as the chosen drawing needs at the width's scale.
      if (m.nodes.size > 20) wrap.style.height = '900px';
      state.layout = layout(m);
      state.layoutKey = key;
      const L0 = state.layout, W0 = svgEl.clientWidth || 1000;
      const sc = Math.min(1.5, W0 / (L0.width + 72));
      wrap.style.height = Math.round(Math.min(900, Math.max(560, (L0.bottom - L0.top) * sc + 120))) + 'px';
      if (!state.view.moved) state.needFit = true;
    }
    const L = state.layout;
    const maxRate = Math.max(1e-9, ...m.edges.map((e) => num(e.rate_per_s)));
    const showLabels = m.edges.length <= LABELS_MAX_EDGES;
    const defs = s('defs', null, ['ok', 'warn', 'bad', 'idle'].map((c) =>
      s('marker', { id: 'arrow-' + c, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9,
        markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-' + c }))));
    viewport = s('g', { class: 'viewport' });
    const edgeLayer = s('g', { class: 'edges' });
    const nodeLayer = s('g', { class: 'nodes' });
    const pairs = new Set(m.edges.map((e) => e.client + '\u0000' + e.server));
    const near = new Set();
    if (state.selected) {
      near.add(state.selected);
      for (const e of m.edges) {
        if (e.client === state.selected) near.add(e.server);
        if (e.server === state.selected) near.add(e.client);
      }
    }

    for (const e of m.edges) {
      const a = L.xy.get(e.client), b = L.xy.get(e.server);
      if (!a || !b) continue;
      const rate = num(e.rate_per_s);
      const hl = health(num(e.error_rate), rate);
      const width = rate > 0 ? 1.4 + 5 * Math.log1p(rate) / Math.log1p(maxRate) : 1.2;
      let p;
      if (e.client === e.server) {
        const cx = a.x + NODE_W / 2;
        p = { d: `M${cx - 20},${a.y - NODE_H / 2} C${cx - 30},${a.y - NODE_H / 2 - 44} ${cx + 30},${a.y - NODE_H / 2 - 44} ${cx + 20},${a.y - NODE_H / 2}`,
          mx: cx, my: a.y - NODE_H / 2 - 40 };
      } else {
        const twoWay = pairs.has(e.server + '\u0000' + e.client);
        p = edgePath(a, b, twoWay ? (e.client < e.server ? -7 : 7) : 0);
      }
      const isNear = state.selected && (e.client === state.selected || e.server === state.selected);
      const grp = s('g', { class: `edge ${hl}${showLabels ? '' : ' hide-label'}${isNear ? ' near' : ''}`,
        'data-client': e.client, 'data-server': e.server, 'data-rate': rate, 'data-protocol': e.protocol || '' });
      const line = s('path', { class: 'line', d: p.d, 'stroke-width': width.toFixed(2), 'marker-end': `url(#arrow-${hl})` });
      const hit = s('path', { class: 'hit', d: p.d });
      grp.append(line, hit);
      const t1 = fmtRate(rate) + '/s', t2 = fmtPct(e.error_rate), t3 = 'p99 ' + fmtMs(e.p99_ms);
      const label = s('g', { class: 'label', transform: `translate(${p.mx},${p.my})` });
      const w = 16 + 5.9 * (t1.length + t2.length + t3.length + 6);
      label.append(
        s('rect', { x: -w / 2, y: -9, width: w, height: 18, rx: 9 }),
        s('text', { 'text-anchor': 'middle', y: 3.8 },
          s('tspan', { class: 'r', text: t1 }), s('tspan', { text: ' · ' }),
          s('tspan', { class: 'e', text: t2 }), s('tspan', { text: ' · ' + t3 })));
      grp.append(label);
      const tipFor = () => [h('b', { text: `${e.client} → ${e.server}` }),
        h('span', { class: 'muted', text: `  ${e.protocol || ''}${e.connection_type ? ' · ' + e.connection_type : ''}` }),
        tipRows([['requests/s', fmtRate(rate)], ['error rate', fmtPct(e.error_rate)],
          ['requests (failed)', `${fmtCount(e.requests)} (${fmtCount(e.failed)})`],
          ['client p50 / p99', `${fmtMs(e.p50_ms)} / ${fmtMs(e.p99_ms)}`],
          ['server p50 / p99', `${fmtMs(e.server_p50_ms)} / ${fmtMs(e.server_p99_ms)}`],
          ['sent / received', `${fmtBytes(e.bytes_sent)} / ${fmtBytes(e.bytes_received)}`],
          ['connects (failed)', `${fmtCount(e.connects)} (${fmtCount(e.connect_failures)})`],
          ['connect p50', fmtMs(e.connect_p50_ms)], ['retransmits', fmtCount(e.retransmits)]])];
      grp.addEventListener('mouseenter', (ev) => showTip(ev, tipFor));
      grp.addEventListener('mousemove', moveTip);
      grp.addEventListener('mouseleave', hideTip);
      edgeLayer.append(grp);
    }

    for (const n of m.nodes.values()) {
      const p = L.xy.get(n.id);
      const svc = m.services.get(n.name) || m.services.get(n.id);
      const rate = svc ? num(svc.rate_per_s) : n.inRate;
      const errRate = svc ? (num(svc.requests) ? num(svc.failed) / num(svc.requests) : 0)
        : (n.inRate ? n.inFailRate / n.inRate : 0);
      const hl = n.kind === 'service' ? health(errRate, rate || 1) : 'none';
      const grp = s('g', { class: `node ${n.kind}${state.selected === n.id ? ' sel' : ''}${near.has(n.id) ? ' near' : ''}`,
        transform: `translate(${p.x},${p.y - NODE_H / 2})`, 'data-id': n.id, 'data-kind': n.kind });
      const rx = n.kind === 'user' ? NODE_H / 2 : 7;
      grp.append(s('rect', { class: 'box', width: NODE_W, height: NODE_H, rx }));
      let tx = 12;
      if (n.kind === 'service') {
        grp.append(s('rect', { class: 'stripe', x: 0.7, y: 0.7, width: 5, height: NODE_H - 1.4, rx: 3,
          fill: hl === 'ok' ? 'var(--ok)' : hl === 'warn' ? 'var(--warn)' : hl === 'bad' ? 'var(--bad)' : 'var(--idle)' }));
        tx = 16;
      } else if (n.kind === 'user') {
        grp.append(s('g', { class: 'icon', transform: 'translate(16,13)' },
          s('circle', { cx: 8, cy: 6, r: 4.5 }), s('path', { d: 'M0,24 C0,15 16,15 16,24' })));
        tx = 40;
      } else {
        grp.append(s('g', { class: 'icon', transform: 'translate(12,15)' },
          s('circle', { cx: 10, cy: 10, r: 9 }), s('path', { d: 'M1,10 H19 M10,1 C5,6 5,14 10,19 M10,1 C15,6 15,14 10,19' })));
        tx = 38;
      }
      // A Kubernetes service shows its namespace before its name: `shop/checkout`.
      grp.append(s('text', { class: 'name', x: tx, y: 21, text: truncate(n.ns ? `${n.ns}/${n.name}` : n.name, n.kind === 'service' ? 21 : 17) }));
      let sub, bad = false;
      if (n.kind === 'user') sub = `${fmtRate(n.outRate)} req/s out`;
      else if (n.kind === 'external') sub = `external · ${fmtRate(n.inRate)} req/s`;
      else if (!rate && n.outRate) sub = `${fmtRate(n.outRate)} req/s out`;
      else {
        sub = `${fmtRate(rate)} req/s · ${fmtPct(errRate)} err`;
        bad = errRate > 0.01;
      }
      grp.append(s('text', { class: 'stat' + (bad ? ' bad' : ''), x: tx, y: 38, text: sub }));
      const tipFor = () => {
        const rows = [['kind', n.kind]];
        if (svc) {
          rows.push(['requests/s', fmtRate(svc.rate_per_s)], ['requests (failed)', `${fmtCount(svc.requests)} (${fmtCount(svc.failed)})`],
            ['p50 / p99', `${fmtMs(svc.p50_ms)} / ${fmtMs(svc.p99_ms)}`]);
          if (Array.isArray(svc.pids) && svc.pids.length) rows.push(['pids', truncate(svc.pids.join(' '), 40)]);
        } else {
          rows.push(['calls in/s', fmtRate(n.inRate)], ['calls out/s', fmtRate(n.outRate)]);
          rows.push(['requests (failed)', `${fmtCount(n.requests)} (${fmtCount(n.failed)})`]);
        }
        return [h('b', { text: n.name }), tipRows(rows)];
      };
      grp.addEventListener('mouseenter', (ev) => showTip(ev, tipFor));
      grp.addEventListener('mousemove', moveTip);
      grp.addEventListener('mouseleave', hideTip);
      grp.addEventListener('click', (ev) => {
        ev.stopPropagation();
        state.selected = state.selected === n.id ? null : n.id;
        renderMap();
        renderServices();
        renderCalls();
      });
      nodeLayer.append(grp);
    }
    viewport.append(edgeLayer, nodeLayer);
    svgEl.classList.toggle('focus', !!state.selected);
    svgEl.replaceChildren(defs, viewport);
    if (state.needFit) {
      state.needFit = false;
      fit();
    } else {
      applyView();
    }
  }

  function setupPanZoom() {
    let drag = null;
    svgEl.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const r = svgEl.getBoundingClientRect();
      const mx = ev.clientX - r.left, my = ev.clientY - r.top;
      const k = Math.exp(-ev.deltaY * 0.0015);
      const ns = Math.max(0.15, Math.min(4, state.view.s * k));
      state.view.tx = mx - (mx - state.view.tx) * (ns / state.view.s);
      state.view.ty = my - (my - state.view.ty) * (ns / state.view.s);
      state.view.s = ns;
      state.view.moved = true;
      applyView();
    }, { passive: false });
    svgEl.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0 || ev.target.closest('.node')) return;
      drag = { x: ev.clientX, y: ev.clientY, tx: state.view.tx, ty: state.view.ty, moved: false };
      svgEl.setPointerCapture(ev.pointerId);
      svgEl.classList.add('dragging');
    });
    svgEl.addEventListener('pointermove', (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      state.view.tx = drag.tx + dx;
      state.view.ty = drag.ty + dy;
      if (drag.moved) state.view.moved = true;
      applyView();
    });
    const end = (ev) => {
      if (!drag) return;
      if (!drag.moved && state.selected && !ev.target.closest('.node')) {
        state.selected = null;
        renderMap();
        renderServices();
        renderCalls();
      }
      drag = null;
      svgEl.classList.remove('dragging');
    };
    svgEl.addEventListener('pointerup', end);
    svgEl.addEventListener('pointercancel', end);
    svgEl.addEventListener('dblclick', fit);
    $('fit').addEventListener('click', fit);
    window.addEventListener('resize', () => { if (!state.view.moved) fit(); });
  }

  // ---------------------------------------------------------------- tables
  function sortable(table, which, cols, rows, rowFn, emptyText) {
    const st = state.sort[which];
    const head = h('tr', null, cols.map((c) => {
      const th = h('th', { class: (c.num ? 'num ' : '') + (st.key === c.key ? 'sorted' + (st.dir > 0 ? ' asc' : '') : ''),
        text: c.title, title: c.help || null });
      th.addEventListener('click', () => {
        if (st.key === c.key) st.dir = -st.dir;
        else { st.key = c.key; st.dir = c.num ? -1 : 1; }
        if (which === 'services') renderServices(); else renderCalls();
      });
      return th;
    }));
    const col = cols.find((c) => c.key === st.key) || cols[0];
    const val = col.value || ((r) => r[col.key]);
    rows = rows.slice().sort((a, b) => {
      const va = val(a), vb = val(b);
      const c = typeof va === 'string' ? String(va).localeCompare(String(vb)) : num(va) - num(vb);
      return c * st.dir;
    });
    const body = h('tbody', null, rows.length ? rows.map(rowFn)
      : h('tr', { class: 'empty-row' }, h('td', { colspan: cols.length, text: emptyText })));
    table.replaceChildren(h('thead', null, head), body);
  }

  function svcCell(name, kind) {
    return h('span', { class: 'svc', title: name }, h('i', { class: 'sw' }), h('span', { text: name }),
      kind && kind !== 'service' ? h('span', { class: 'kind-tag', text: kind }) : null);
  }
  function paintSwatches(root) {
    for (const sw of root.querySelectorAll('.svc')) {
      const i = sw.querySelector('i');
      if (i) i.style.background = colorOf(sw.title);
    }
  }
  function errClass(f) { return f > 0.05 ? 'num err-bad' : f > 0.01 ? 'num err-warn' : 'num'; }

  function spark(values) {
    const W = 64, H = 18;
    const max = Math.max(1e-9, ...values);
    const pts = values.map((v, i) => [W * i / Math.max(1, HISTORY - 1), H - 1 - (H - 3) * v / max]);
    const off = W - (pts.length ? pts[pts.length - 1][0] : 0);
    const line = pts.map((p, i) => (i ? 'L' : 'M') + (p[0] + off).toFixed(1) + ',' + p[1].toFixed(1)).join('');
    const area = pts.length ? line + `L${W},${H}L${(pts[0][0] + off).toFixed(1)},${H}z` : '';
    return s('svg', { class: 'spark', width: W, height: H, viewBox: `0 0 ${W} ${H}`, 'aria-hidden': 'true' },
      s('path', { class: 'area', d: area }), s('path', { d: line }));
  }

  function renderServices() {
    const g = state.graph;
    if (!g) return;
    const filter = state.filter.toLowerCase();
    const rows = (g.services || []).filter((r) => !filter || String(r.name).toLowerCase().includes(filter))
      .map((r) => Object.assign({}, r, { error_rate: num(r.requests) ? num(r.failed) / num(r.requests) : 0 }));
    $('services-sub').textContent = `${(g.services || []).length} on this node`;
    const cols = [
      { key: 'name', title: 'Service' },
      { key: 'rate_per_s', title: 'Requests/s', num: true, help: 'requests served per second' },
      { key: 'error_rate', title: 'Errors', num: true, help: 'failed ÷ requests served' },
      { key: 'p50_ms', title: 'p50', num: true }, { key: 'p99_ms', title: 'p99', num: true },
      { key: 'requests', title: 'Requests', num: true }, { key: 'failed', title: 'Failed', num: true },
    ];
    const table = $('services');
    sortable(table, 'services', cols, rows, (r) => h('tr', { class: state.selected === r.name ? 'sel' : null, 'data-service': r.name },
      h('td', { title: 'pids ' + (r.pids || []).join(' ') }, svcCell(String(r.name))),
      h('td', { class: 'num' }, spark(state.history.get(String(r.name)) || []), fmtRate(r.rate_per_s)),
      h('td', { class: errClass(r.error_rate), text: fmtPct(r.error_rate) }),
      h('td', { class: 'num', text: fmtMs(r.p50_ms) }), h('td', { class: 'num', text: fmtMs(r.p99_ms) }),
      h('td', { class: 'num', text: fmtCount(r.requests) }), h('td', { class: 'num', text: fmtCount(r.failed) })),
    filter ? 'No service matches the filter.' : 'No services seen yet.');
    paintSwatches(table);
    for (const tr of table.querySelectorAll('tbody tr[data-service]')) {
      tr.addEventListener('click', () => {
        const n = tr.getAttribute('data-service');
        state.selected = state.selected === n ? null : n;
        renderMap();
        renderServices();
        renderCalls();
      });
    }
  }

  function renderCalls() {
    const g = state.graph;
    if (!g) return;
    const kinds = new Map((g.nodes || []).map((n) => [String(n.id), n.kind]));
    let rows = (g.edges || []).map((e) => Object.assign({}, e, { pair: e.client + ' → ' + e.server }));
    if (state.selected) rows = rows.filter((e) => e.client === state.selected || e.server === state.selected);
    $('calls-sub').textContent = state.selected ? `to and from ${state.selected}` : `${(g.edges || []).length} edges`;
    const cols = [
      { key: 'pair', title: 'Client → server' },
      { key: 'rate_per_s', title: 'Req/s', num: true }, { key: 'error_rate', title: 'Errors', num: true },
      { key: 'p99_ms', title: 'p50 / p99', num: true, help: 'latency seen by the client' },
      { key: 'server_p99_ms', title: 'Server p99', num: true, help: 'latency seen by the server' },
      { key: 'bytes_sent', title: 'Sent / recv', num: true, value: (r) => num(r.bytes_sent) + num(r.bytes_received) },
      { key: 'connects', title: 'Connects', num: true, help: 'TCP connects (failed)' },
      { key: 'retransmits', title: 'Retrans', num: true },
    ];
    const table = $('calls');
    sortable(table, 'calls', cols, rows, (r) => h('tr', { 'data-client': r.client, 'data-server': r.server },
      h('td', null, svcCell(String(r.client), kinds.get(r.client)), h('span', { class: 'arrow', text: '→' }),
        svcCell(String(r.server), kinds.get(r.server)),
        h('span', { class: 'kind-tag', text: (r.protocol || '?') + (r.connection_type ? ' · ' + r.connection_type.replace(/_/g, ' ') : ''),
          title: 'protocol · connection type' })),
      h('td', { class: 'num', text: fmtRate(r.rate_per_s) }),
      h('td', { class: errClass(num(r.error_rate)), text: fmtPct(r.error_rate) }),
      h('td', { class: 'num', text: fmtMs(r.p50_ms) + ' / ' + fmtMs(r.p99_ms) }),
      h('td', { class: 'num', text: fmtMs(r.server_p99_ms) }),
      h('td', { class: 'num', text: fmtBytes(r.bytes_sent) + ' / ' + fmtBytes(r.bytes_received) }),
      h('td', { class: num(r.connect_failures) ? 'num err-bad' : 'num',
        text: fmtCount(r.connects) + (num(r.connect_failures) ? ` (${fmtCount(r.connect_failures)})` : '') }),
      h('td', { class: num(r.retransmits) ? 'num err-warn' : 'num', text: fmtCount(r.retransmits) })),
    'No calls seen yet.');
    paintSwatches(table);
  }

  // ---------------------------------------------------------------- agent health
  function sumDrops(obj) {
    let n = 0;
    for (const v of Object.values(obj || {})) n += num(v);
    return n;
  }
  function rateOf(key, value) {
    return state.rates[key] !== undefined ? state.rates[key] : null;
  }
  function renderHealth() {
    const st = state.stats;
    const box = $('health');
    if (!st) return;
    const k = st.kernel || {}, u = st.user || {}, o = st.otlp || {};
    const kdrops = k.drops || {};
    const userDrops = [
      ['malformed events', u.bad_events], ['connections evicted (table full)', u.conns_evicted_full],
      ['parser allocations failed', u.parser_alloc_failed], ['exchanges with unknown role', u.role_unknown],
    ];
    for (const [proto, l] of Object.entries(u.l7 || {})) {
      if (num(l.pipeline_drops)) userDrops.push([`${proto} pipelined requests dropped`, l.pipeline_drops]);
      if (num(l.state_lost)) userDrops.push([`${proto} parser state lost`, l.state_lost]);
    }
    if (o.enabled) {
      userDrops.push(['spans dropped: export queue full', o.spans_dropped_queue_full]);
      userDrops.push(['spans dropped: rejected', o.spans_dropped_rejected]);
    }
    const kernelTotal = sumDrops(kdrops);
    const userTotal = userDrops.reduce((a, [, v]) => a + num(v), 0);
    const kv = (rows) => h('div', { class: 'kv' }, rows.map(([key, v, cls]) => [
      h('div', { class: 'k', text: key }), h('div', { class: 'v ' + (cls || ''), text: v })]));
    const dropRows = (pairs) => pairs.map(([key, v]) => [key, fmtCount(v), num(v) ? 'bad' : 'zero']);

    let exportBadge;
    if (!o.enabled) exportBadge = h('span', { class: 'badge off', text: 'no endpoint set' });
    else if (num(state.rates.batches_failed) > 0) exportBadge = h('span', { class: 'badge bad', text: 'failing' });
    else if (num(state.rates.retries) > 0) exportBadge = h('span', { class: 'badge warn', text: 'retrying' });
    else exportBadge = h('span', { class: 'badge ok', text: 'exporting' });
    const overall = kernelTotal + userTotal ? h('span', { class: 'badge warn', text: 'dropping' }) : h('span', { class: 'badge ok', text: 'no drops' });

    const evRate = rateOf('events'), spRate = rateOf('spans');
    box.replaceChildren(
      h('div', { class: 'bigs' },
        h('div', { class: 'big' }, h('div', { class: 'v', text: evRate === null ? '–' : fmtRate(evRate) }), h('div', { class: 'k', text: 'kernel events/s' })),
        h('div', { class: 'big' }, h('div', { class: 'v', text: spRate === null ? '–' : fmtRate(spRate) }), h('div', { class: 'k', text: 'spans/s' })),
        h('div', { class: 'big' }, h('div', { class: 'v', text: fmtCount(u.conns_active) }), h('div', { class: 'k', text: 'connections tracked' })),
        h('div', { class: 'big' }, h('div', { class: 'v', text: fmtCount(kernelTotal + userTotal) }), h('div', { class: 'k', text: 'dropped, all reasons' }))),
      h('h3', null, 'OTLP export ', exportBadge),
      o.enabled ? kv([['spans exported', fmtCount(o.spans_exported), ''], ['queue', fmtCount(o.queue_spans) + ' spans', ''],
        ['batches sent', fmtCount(o.batches_sent), ''], ['batches failed', fmtCount(o.batches_failed), num(o.batches_failed) ? 'bad' : 'zero'],
        ['retries', fmtCount(o.retries), num(o.retries) ? 'bad' : 'zero'], ['bytes sent', fmtBytes(o.bytes_sent), '']])
        : h('div', { class: 'muted', text: 'Set OTEL_EXPORTER_OTLP_ENDPOINT to send spans to a collector.' }),
      h('h3', null, 'Dropped in the kernel ', overall),
      Object.keys(kdrops).length ? kv(dropRows(Object.entries(kdrops).map(([r, v]) => [r.replace(/_/g, ' '), v])))
        : h('div', { class: 'muted', text: 'no counters' }),
      h('h3', null, 'Dropped in the agent'), kv(dropRows(userDrops)),
      h('h3', null, 'Capture'),
      kv([['mode', st.capture_mode || '?'], ['events', fmtCount(num(k.data_events) + num(k.conn_events))],
        ['bytes captured', fmtBytes(k.bytes_captured)], ['spans built', fmtCount(u.spans)],
        ['connections opened', fmtCount(u.conns_opened)], ['connect failures', fmtCount(u.connect_failed)],
        ['retransmits', fmtCount(u.retransmits)]]),
    );
    $('health-sub').textContent = st.capture_mode ? `${st.capture_mode} tracepoints` : '';
  }

  function updateRates(st, at) {
    const prev = state.prevStats, dt = (at - state.prevStatsAt) / 1000;
    const cur = {
      events: num((st.kernel || {}).data_events) + num((st.kernel || {}).conn_events),
      spans: num((st.user || {}).spans),
      batches_failed: num((st.otlp || {}).batches_failed),
      retries: num((st.otlp || {}).retries),
    };
    if (prev && dt > 0.2) {
      for (const key of Object.keys(cur)) state.rates[key] = Math.max(0, (cur[key] - prev[key]) / dt);
    }
    if (!prev || dt > 0.2) {
      state.prevStats = cur;
      state.prevStatsAt = at;
    }
  }

  // ---------------------------------------------------------------- traces
  function renderTraceList() {
    const list = state.traces[state.tab] || [];
    const table = $('traces');
    const maxDur = Math.max(1e-9, ...list.map((t) => num(t.duration_ms)));
    $('traces-sub').textContent = list.length ? `${list.length} ${state.tab === 'slowest' ? 'slowest of the last 15 min' : 'most recent'}` : '';
    const head = h('thead', null, h('tr', null, h('th', { text: 'Start' }), h('th', { text: 'Root' }),
      h('th', { class: 'num', text: 'Duration' }), h('th', { class: 'num', text: 'Spans' })));
    const rows = list.map((t) => {
      const bar = h('i');
      bar.style.width = Math.max(2, 100 * num(t.duration_ms) / maxDur) + '%';
      const tr = h('tr', { class: 'trace-row' + (t.trace_id === state.traceId ? ' sel' : ''), 'data-trace-id': t.trace_id },
        h('td', { class: 'mono muted', text: fmtTime(num(t.start_unix_ms)) }),
        h('td', null, svcCell(String(t.root_service || '?')), ' ',
          h('span', { class: 'root-name', text: t.root_name || '', title: t.root_name || '' }),
          t.error ? [' ', h('span', { class: 'err-badge', text: 'error' })] : null),
        h('td', { class: 'num' }, h('div', { class: 'dur' }, h('span', { class: 'bar' }, bar), fmtMs(t.duration_ms))),
        h('td', { class: 'num', text: String(num(t.spans)) }));
      tr.addEventListener('click', () => openTrace(t.trace_id));
      return tr;
    });
    table.replaceChildren(head, h('tbody', null, rows.length ? rows
      : h('tr', { class: 'empty-row' }, h('td', { colspan: 4, text: 'No traces yet.' }))));
    paintSwatches(table);
  }

  async function openTrace(id) {
    state.traceId = id;
    state.spanId = null;
    renderTraceList();
    try {
      const t = await getJSON('api/traces/' + encodeURIComponent(id));
      if (state.traceId !== id) return;
      state.trace = t;
      renderWaterfall();
    } catch (err) {
      if (state.traceId !== id) return;
      state.trace = null;
      $('waterfall').replaceChildren(h('div', { class: 'empty', text: 'This trace is no longer held by the agent (it keeps the most recent and the slowest).' }));
    }
  }

  // Parent before child, siblings by start; spans whose parent is missing become roots.
  function treeOrder(spans) {
    const byId = new Map(spans.map((sp) => [sp.span_id, sp]));
    const kids = new Map();
    const roots = [];
    for (const sp of spans) {
      if (sp.parent_span_id && byId.has(sp.parent_span_id) && sp.parent_span_id !== sp.span_id) {
        if (!kids.has(sp.parent_span_id)) kids.set(sp.parent_span_id, []);
        kids.get(sp.parent_span_id).push(sp);
      } else {
        roots.push(sp);
      }
    }
    const out = [], seen = new Set();
    const walk = (sp, depth) => {
      if (seen.has(sp.span_id)) return;
      seen.add(sp.span_id);
      out.push({ sp, depth });
      for (const c of (kids.get(sp.span_id) || []).sort((a, b) => num(a.start_unix_ns) - num(b.start_unix_ns))) walk(c, depth + 1);
    };
    roots.sort((a, b) => num(a.start_unix_ns) - num(b.start_unix_ns)).forEach((r) => walk(r, 0));
    for (const sp of spans) if (!seen.has(sp.span_id)) walk(sp, 0);
    return out;
  }

  function niceStep(total) {
    const raw = total / 5, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  function renderWaterfall() {
    const t = state.trace, box = $('waterfall');
    if (!t || !Array.isArray(t.spans) || !t.spans.length) {
      box.replaceChildren(h('div', { class: 'empty', text: 'This trace has no spans.' }));
      return;
    }
    const t0 = Math.min(...t.spans.map((sp) => num(sp.start_unix_ns)));
    const t1 = Math.max(...t.spans.map((sp) => num(sp.end_unix_ns)));
    const totalMs = Math.max(1e-6, (t1 - t0) / 1e6);
    const services = new Set(t.spans.map((sp) => sp.service));
    const rows = treeOrder(t.spans);
    const step = niceStep(totalMs);
    const ticks = [];
    for (let v = 0; v <= totalMs + 1e-9 && ticks.length < 12; v += step) ticks.push(v);
    const pct = (ms) => (100 * ms / totalMs);
    const axis = h('div', { class: 'wf-axis' }, ticks.map((v) => {
      const e = h('span', { text: v === 0 ? '0' : fmtMs(v) });
      e.style.left = pct(v) + '%';
      return e;
    }));
    const grid = h('div', { class: 'wf-grid' }, h('div', { class: 'wf-axis' }), axis);
    for (const { sp, depth } of rows) {
      const start = (num(sp.start_unix_ns) - t0) / 1e6, dur = Math.max(0, (num(sp.end_unix_ns) - num(sp.start_unix_ns)) / 1e6);
      const err = sp.status === 'ERROR';
      const label = h('div', { class: 'wf-label', title: `${sp.service} · ${sp.name} (${String(sp.kind).toLowerCase()})` },
        h('i', { class: 'wf-dot' }), h('span', { class: 'svcname', text: sp.service || '?' }),
        h('span', { class: 'opname', text: sp.name || '' }),
        h('span', { class: 'kind-tag', text: String(sp.kind || '').toLowerCase() }),
        err ? h('span', { class: 'err-badge', text: 'error' }) : null);
      label.style.paddingLeft = (14 + depth * 16) + 'px';
      label.querySelector('.wf-dot').style.background = colorOf(String(sp.service || ''));
      const track = h('div', { class: 'wf-track' });
      for (const v of ticks.slice(1)) {
        const gl = h('i', { class: 'gl' });
        gl.style.left = pct(v) + '%';
        track.append(gl);
      }
      const bar = h('div', { class: 'wf-bar' + (err ? ' error' : '') });
      bar.style.left = pct(start) + '%';
      bar.style.width = `max(2px, ${pct(dur)}%)`;
      bar.style.background = err ? 'var(--bad)' : colorOf(String(sp.service || ''));
      const lab = h('span', { class: 'wf-dur', text: fmtMs(dur) });
      if (pct(start + dur) > 80) {
        lab.style.right = (100 - pct(start)) + '%';
        lab.style.marginRight = '6px';
      } else {
        lab.style.left = pct(start + dur) + '%';
        lab.style.marginLeft = '6px';
      }
      track.append(bar, lab);
      const row = h('div', { class: 'wf-row' + (sp.span_id === state.spanId ? ' sel' : ''), 'data-span-id': sp.span_id }, label, track);
      row.addEventListener('click', () => {
        state.spanId = state.spanId === sp.span_id ? null : sp.span_id;
        renderWaterfall();
      });
      grid.append(row);
    }
    const head = h('div', { class: 'wf-head' },
      h('span', { class: 'total', text: fmtMs(totalMs) }),
      h('span', { class: 'muted', text: `${t.spans.length} spans · ${services.size} services` }),
      h('span', { class: 'tid', text: 'trace ' + t.trace_id }));
    const kids = [head, grid];
    const sel = t.spans.find((sp) => sp.span_id === state.spanId);
    if (sel) {
      const attrs = Object.entries(sel.attributes || {});
      const fixed = [['service', sel.service], ['kind', sel.kind], ['status', sel.status],
        ['start', fmtTime(num(sel.start_unix_ns) / 1e6)], ['duration', fmtMs((num(sel.end_unix_ns) - num(sel.start_unix_ns)) / 1e6)],
        ['span id', sel.span_id], ['parent span id', sel.parent_span_id || '(root)'], ['process.pid', sel.pid]];
      kids.push(h('div', { class: 'wf-detail' }, h('h4', { text: `${sel.service} · ${sel.name}` }),
        h('table', null, [...fixed, ...attrs].filter(([, v]) => v !== undefined && v !== null)
          .map(([k, v]) => h('tr', null, h('td', { text: k }), h('td', { text: String(v) }))))));
    } else {
      kids.push(h('div', { class: 'wf-detail muted', text: 'Select a span to see its attributes.' }));
    }
    box.replaceChildren(...kids);
  }

  // ---------------------------------------------------------------- refresh loop
  function setStatus(ok, text) {
    const el = $('status');
    el.classList.toggle('live', ok);
    el.classList.toggle('down', !ok);
    el.querySelector('.text').textContent = text;
  }

  function recordHistory(g) {
    const seen = new Set();
    for (const sv of g.services || []) {
      const name = String(sv.name);
      seen.add(name);
      const arr = state.history.get(name) || [];
      arr.push(num(sv.rate_per_s));
      if (arr.length > HISTORY) arr.shift();
      state.history.set(name, arr);
    }
    for (const name of [...state.history.keys()]) if (!seen.has(name)) state.history.delete(name);
  }

  async function refresh() {
    if (state.inflight) return;
    state.inflight = true;
    const [g, st, recent, slowest] = await Promise.allSettled([
      getJSON('api/graph'), getJSON('api/stats'),
      getJSON('api/traces?sort=recent&limit=50'), getJSON('api/traces?sort=slowest&limit=20')]);
    state.inflight = false;
    const failed = [g, st, recent, slowest].filter((r) => r.status === 'rejected');
    if (g.status === 'fulfilled') {
      state.graph = g.value;
      recordHistory(g.value);
      renderMap();
      renderServices();
      renderCalls();
    }
    if (st.status === 'fulfilled') {
      state.stats = st.value;
      updateRates(st.value, performance.now());
      renderHealth();
    }
    if (recent.status === 'fulfilled') state.traces.recent = recent.value;
    if (slowest.status === 'fulfilled') state.traces.slowest = slowest.value;
    if (recent.status === 'fulfilled' || slowest.status === 'fulfilled') renderTraceList();
    if (failed.length === 4) setStatus(false, 'agent unreachable');
    else if (failed.length) setStatus(false, 'partly unavailable: ' + failed.map((r) => String(r.reason && r.reason.message || r.reason)).join('; '));
    else setStatus(true, 'live · ' + fmtTime(Date.now()).slice(0, 8));
  }

  function schedule() {
    clearTimeout(state.timer);
    if (!state.refreshMs) return;
    state.timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, state.refreshMs);
  }

  function init() {
    $('where').textContent = location.host;
    setupPanZoom();
    $('refresh').addEventListener('change', (ev) => {
      state.refreshMs = Number(ev.target.value) || 0;
      if (!state.refreshMs) setStatus(true, 'paused');
      schedule();
    });
    $('filter').addEventListener('input', (ev) => {
      state.filter = ev.target.value;
      renderServices();
    });
    for (const b of document.querySelectorAll('.tabs button')) {
      b.addEventListener('click', () => {
        state.tab = b.getAttribute('data-tab');
        for (const o of document.querySelectorAll('.tabs button')) o.classList.toggle('on', o === b);
        renderTraceList();
      });
    }
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
    refresh().then(schedule);
  }

  init();
})();
