// The admin page (B4, F32, F35-F37): lines and their devices,
// registrations, open call backs with their timers, the service parameters
// (a form that PUTs the changed ones), which instance is active, recent
// alarms with their attributes, and charts of the last hour of the
// server's counters (GET /api/v1/history). Refreshed from the server-sent
// events and by polling. The admin token (asked once, kept in
// sessionStorage for this tab) goes with every request: writes need it, and
// so do the registrations, call backs, alarms, history and the event stream
// (B7), which are not asked for without it. Tables say "loading" until
// their first answer, and "none" only when loaded and empty.
'use strict';
(function () {
  const { request, stream, el, ApiError } = window.callbackd;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 5000;
  const TOKEN_KEY = 'callbackd.token';

  // ---- token
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
  function auth() { return token() ? { Authorization: 'Bearer ' + token() } : {}; }
  $('token').value = token();
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token').value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    message(v ? 'Token set for this tab.' : 'Token forgotten.', 'ok');
    tokenChanged();
  });
  $('token-clear').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('token').value = '';
    message('Token forgotten.', 'ok');
    tokenChanged();
  });

  // message shows one line above the sections: the answer to an action
  // (from 'action') or a load failure (from 'load'), which refresh clears
  // once loading works again.
  let shownFrom = '';
  function message(text, kind, from) {
    const m = $('message');
    m.textContent = text || '';
    m.dataset.kind = text ? (kind || 'error') : '';
    shownFrom = text ? (from || 'action') : '';
  }

  function errorText(e) {
    if (e instanceof ApiError && e.status === 401) {
      return 'Not authorized: enter the admin token above (' + e.message + ')';
    }
    return e.message;
  }

  // read loads a resource, with the token when there is one. An
  // admin-only one (locked) is not asked for without a token (a 401 would
  // only repeat what the page says): null, and its table says so.
  async function read(path, locked) {
    if (locked && !token()) return null;
    return request('GET', path, undefined, auth());
  }

  // write sends an authenticated change; without a token it asks first.
  async function write(method, path, body) {
    if (!token()) {
      $('token').focus();
      throw new Error('Enter the admin token first.');
    }
    return request(method, path, body, auth());
  }

  // ---- formatting
  function when(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toLocaleString();
  }
  function left(s) {
    const d = new Date(s);
    if (isNaN(d)) return '';
    let sec = Math.round((d - Date.now()) / 1000);
    const sign = sec < 0 ? '-' : '';
    sec = Math.abs(sec);
    const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), r = sec % 60;
    return sign + (h ? h + 'h' : '') + (h || m ? m + 'm' : '') + r + 's';
  }
  // countdown: an element whose text is refreshed each second by tick().
  function countdown(at) { return el('time', { datetime: at, 'data-countdown': at, title: when(at) }, left(at)); }
  function tick() {
    for (const e of document.querySelectorAll('[data-countdown]')) e.textContent = left(e.dataset.countdown);
  }
  // fill shows a table's rows (state loaded), or, rows null, that it
  // needs the token (state locked).
  function fill(table, rows) {
    const t = $(table);
    t.tBodies[0].replaceChildren(...(rows || []));
    t.dataset.count = String(rows ? rows.length : 0);
    t.dataset.state = rows ? 'loaded' : 'locked';
  }
  function list(v) { return Array.isArray(v) ? v : []; }
  function count(v) { return Array.isArray(v) ? v.length : (v === undefined || v === null ? '' : v); }

  // ---- sections
  async function loadStatus() {
    const s = await read('/status');
    const rows = [
      ['Instance', s.instance], ['Active', s.active ? 'yes (this instance serves)' : 'no (standing by)'],
      ['Started', when(s.started)], ['Lines', s.lines], ['Registrations', s.registrations],
      ['Open requests', s.open_requests], ['Notifications sent', s.notifications], ['Active calls', s.active_calls],
    ];
    const c = s.cluster; // F37: only for one of a cluster's instances
    if (c) {
      const last = list(c.takeovers)[0];
      rows.push(
        ['Cluster', c.active + ' active since ' + when(c.since) + ' (epoch ' + c.epoch + ', ' + c.takeovers_total + ' takeovers)'],
        ['Instances', list(c.members).map((m) => m.name + ' (priority ' + m.priority + ', ' +
          (m.active ? 'active' : m.live ? 'standby' : 'not seen since ' + when(m.seen)) + ')').join(', ')],
        ['Last takeover', last ? when(last.at) + ': ' + (last.previous || '-') + ' \u2192 ' + last.holder + ' (' + last.reason + ')' : '']);
    }
    const dl = $('status');
    dl.dataset.active = String(!!s.active);
    dl.dataset.state = 'loaded';
    dl.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', null, k), el('dd', null, v === undefined ? '' : v)]));
  }

  // A line's kind, with a route point's members in order.
  function kindText(l) {
    const kind = l.kind || 'phone';
    const members = list(l.members);
    return members.length ? kind + ': ' + members.join(', ') : kind;
  }
  // A line's forwarding and DND, such as "all → 1002, busy → voicemail, DND".
  function forwardText(l) {
    const parts = [['all', l.forward_all], ['busy', l.forward_busy], ['no answer', l.forward_no_answer]]
      .filter(([, to]) => to).map(([when, to]) => when + ' → ' + to);
    if (l.dnd) parts.push('DND');
    return parts.join(', ');
  }

  const lineRows = new Map(); // dn -> {state, devices, calls} cells
  async function loadLines() {
    const lines = list(await read('/lines'));
    lineRows.clear();
    fill('lines', lines.map((l) => {
      const cells = { state: el('td', { class: 'state', 'data-state': l.state }, l.state), devices: el('td', null, count(l.devices)), calls: el('td', null, count(l.calls)) };
      lineRows.set(l.dn, cells);
      return el('tr', { 'data-dn': l.dn },
        el('td', null, l.dn), el('td', null, l.name), el('td', null, l.locale), cells.state, cells.devices, cells.calls,
        el('td', null, l.busy_trigger), el('td', null, l.max_devices), el('td', null, l.notification),
        el('td', null, kindText(l)), el('td', null, forwardText(l)),
        el('td', null, el('a', { href: '/phone/' + encodeURIComponent(l.dn), target: '_blank', rel: 'noopener' }, 'console')));
    }));
  }
  function lineEvent(l) {
    const cells = lineRows.get(l.dn);
    if (!cells) { later(loadLines); return; }
    cells.state.textContent = l.state;
    cells.state.dataset.state = l.state;
    cells.devices.textContent = count(l.devices);
    cells.calls.textContent = count(l.calls);
    later(loadRegistrations);
  }

  async function loadRegistrations() {
    const regs = await read('/registrations', true);
    fill('registrations', regs && list(regs).map((r) => el('tr', { 'data-dn': r.dn },
      el('td', null, r.dn), el('td', { class: 'mono' }, r.contact), el('td', null, r.transport),
      el('td', { class: 'mono' }, r.source), el('td', null, r.expires ? countdown(r.expires) : ''))));
  }

  async function loadCallbacks() {
    const cbs = await read('/callbacks', true);
    fill('callbacks', cbs && list(cbs).map((c) => el('tr', { 'data-id': c.id, 'data-caller': c.caller, 'data-callee': c.callee, 'data-state': c.state },
      el('td', null, c.id), el('td', null, c.caller), el('td', null, c.callee), el('td', null, c.kind),
      el('td', { class: 'state' }, c.state), el('td', null, when(c.created)),
      el('td', null, c.expires ? countdown(c.expires) : ''),
      el('td', null, el('ul', { class: 'timers' }, ...list(c.timers).map((tm) => el('li', { 'data-timer': tm.name }, tm.name + ' ', countdown(tm.at))))),
      el('td', null, el('button', { type: 'button', class: 'danger', 'data-action': 'cancel', onclick: () => cancel(c) }, 'Cancel')))));
  }
  async function cancel(c) {
    if (!confirm('Cancel call back ' + c.id + ' (' + c.caller + ' \u2192 ' + c.callee + ')?')) return;
    try {
      await write('DELETE', '/callbacks/' + encodeURIComponent(c.id));
      message('Call back ' + c.id + ' cancelled.', 'ok');
    } catch (e) {
      message(errorText(e));
    }
    refresh(loadCallbacks, loadStatus);
  }

  // An alarm's attributes, which say what it is about: the line (dn or
  // account), the reason, the source and the error first, then the others
  // by name.
  const FIRST_ATTRS = ['dn', 'account', 'reason', 'source', 'error'];
  function attrList(attrs) {
    const keys = Object.keys(attrs || {});
    const rank = (k) => { const i = FIRST_ATTRS.indexOf(k); return i < 0 ? FIRST_ATTRS.length : i; };
    keys.sort((x, y) => rank(x) - rank(y) || (x < y ? -1 : x > y ? 1 : 0));
    return el('dl', { class: 'attrs' }, ...keys.map((k) => el('div', { 'data-attr': k }, el('dt', null, k), el('dd', null, attrs[k]))));
  }
  async function loadAlarms() {
    const alarms = await read('/alarms', true);
    fill('alarms', alarms && list(alarms).slice().reverse().map((a) => el('tr', { 'data-level': a.level }, // newest first
      el('td', { class: 'c-time' }, when(a.time)), el('td', { class: 'level' }, a.level), el('td', null, a.message),
      el('td', null, attrList(a.attrs)))));
  }

  // ---- parameters
  let params = null; // as last loaded
  const form = $('params');
  function dirty() { return !!form.querySelector('[data-dirty]'); }
  function fieldInput(name, value) {
    const id = 'param-' + name;
    let input;
    if (typeof value === 'boolean') {
      input = el('input', { id, name, type: 'checkbox' });
      input.checked = value;
    } else if (typeof value === 'number') {
      input = el('input', { id, name, type: 'number', step: 'any' });
      input.value = String(value);
    } else if (value !== null && typeof value === 'object') {
      input = el('textarea', { id, name, rows: 2, 'data-json': true });
      input.value = JSON.stringify(value);
    } else {
      input = el('input', { id, name, type: 'text', spellcheck: 'false' });
      input.value = value === null || value === undefined ? '' : String(value);
    }
    input.addEventListener('input', () => { input.dataset.dirty = '1'; });
    input.addEventListener('change', () => { input.dataset.dirty = '1'; });
    return el('div', { class: 'field', 'data-field': name },
      el('label', { for: id }, name), input, el('span', { class: 'field-error', id: id + '-error', role: 'alert' }));
  }
  function renderParams(p, force) {
    if (!p || typeof p !== 'object') return;
    if (!force && dirty()) { params = p; return; } // do not overwrite what the admin is typing
    params = p;
    form.querySelector('.fields').replaceChildren(...Object.keys(p).sort().map((k) => fieldInput(k, p[k])));
  }
  function readField(input, old) {
    if (input.type === 'checkbox') return input.checked;
    if (input.type === 'number') return input.value === '' ? null : Number(input.value);
    if (input.dataset.json !== undefined) {
      try { return JSON.parse(input.value); } catch (e) { return input.value; }
    }
    return typeof old === 'number' ? Number(input.value) : input.value;
  }
  function clearErrors() {
    for (const f of form.querySelectorAll('.field')) {
      f.classList.remove('invalid');
      f.querySelector('.field-error').textContent = '';
      const i = f.querySelector('input,textarea');
      if (i) i.removeAttribute('aria-invalid');
    }
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    const status = form.querySelector('.form-status');
    const change = {};
    for (const input of form.querySelectorAll('[data-dirty]')) {
      const v = readField(input, params ? params[input.name] : undefined);
      if (!params || JSON.stringify(v) !== JSON.stringify(params[input.name])) change[input.name] = v;
    }
    if (!Object.keys(change).length) { status.textContent = 'Nothing changed.'; return; }
    status.textContent = 'Saving\u2026';
    try {
      const p = await write('PUT', '/params', change);
      renderParams(p, true);
      status.textContent = 'Saved: ' + Object.keys(change).join(', ') + '.';
      // The error of an earlier attempt no longer holds.
      if ($('message').dataset.kind === 'error') message('');
    } catch (e) {
      status.textContent = '';
      const bad = e instanceof ApiError ? [...e.details] : [];
      if (e instanceof ApiError && e.field && !bad.some((d) => d.field === e.field)) bad.unshift({ field: e.field, message: e.message });
      let first = null;
      for (const d of bad) {
        const f = form.querySelector('[data-field="' + CSS.escape(d.field) + '"]');
        if (!f) continue;
        f.classList.add('invalid');
        f.querySelector('.field-error').textContent = d.message;
        const i = f.querySelector('input,textarea');
        if (i) { i.setAttribute('aria-invalid', 'true'); first = first || i; }
      }
      if (first) first.focus();
      message(errorText(e));
    }
  });
  form.addEventListener('reset', (ev) => {
    ev.preventDefault();
    clearErrors();
    renderParams(params, true);
    form.querySelector('.form-status').textContent = '';
  });
  async function loadParams() {
    renderParams(await read('/params'));
    form.querySelector('.fields').dataset.state = 'loaded';
  }

  // ---- charts: the last hour of the server's counters
  // GET /history gives a sample every 10 s (360 kept); the page asks for
  // the whole hour once, then only for what is new (?since=). Counters
  // (calls, notifications, failures) are drawn as their increase per
  // interval, gauges (open requests) as read. Plain SVG, no library.
  const HOUR_MS = 3600 * 1000;
  // The SVG namespace, from the charts' <svg> elements in the page (the
  // HTML parser puts them there).
  const SVG = document.querySelector('#charts svg').namespaceURI;
  const W = 320, H = 110, PAD_L = 30, PAD_R = 6, PAD_T = 6, PAD_B = 18;
  let samples = [];
  let interval = '10s';
  async function loadHistory() {
    if (!token()) {
      samples = [];
      $('charts').dataset.state = 'locked';
      drawCharts();
      return;
    }
    const last = samples.length ? samples[samples.length - 1].time : '';
    const h = await read('/history' + (last ? '?since=' + encodeURIComponent(last) : ''), true);
    if (!h) return;
    interval = h.interval || interval;
    samples = samples.concat(list(h.samples));
    const end = samples.length ? Date.parse(samples[samples.length - 1].time) : 0;
    samples = samples.filter((x) => Date.parse(x.time) > end - HOUR_MS);
    $('charts').dataset.state = 'loaded';
    drawCharts();
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // series: [{t (ms), v}] for one chart.
  function series(name, kind) {
    const out = [];
    for (let i = 0; i < samples.length; i++) {
      const t = Date.parse(samples[i].time);
      const v = Number(samples[i][name]) || 0;
      if (kind === 'gauge') out.push({ t, v });
      else if (i > 0) out.push({ t, v: Math.max(0, v - (Number(samples[i - 1][name]) || 0)) });
    }
    return out;
  }
  // niceMax rounds up to 1, 2 or 5 times a power of ten (at least 1).
  function niceMax(v) {
    if (v <= 1) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }
  function hhmm(ms) { return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); }
  function drawChart(fig) {
    const kind = fig.dataset.kind;
    const pts = series(fig.dataset.series, kind);
    const end = samples.length ? Date.parse(samples[samples.length - 1].time) : Date.now();
    const start = end - HOUR_MS;
    const max = niceMax(Math.max(0, ...pts.map((p) => p.v)));
    const x = (t) => PAD_L + ((t - start) / HOUR_MS) * (W - PAD_L - PAD_R);
    const y = (v) => PAD_T + (1 - v / max) * (H - PAD_T - PAD_B);
    const title = fig.querySelector('figcaption').firstChild.textContent.trim();
    const g = [svg('title', null, title + ', last hour')];
    for (const v of [0, max / 2, max]) {
      g.push(svg('line', { x1: PAD_L, x2: W - PAD_R, y1: y(v), y2: y(v), class: v ? 'grid' : 'axis' }));
      g.push(svg('text', { x: PAD_L - 4, y: y(v) + 3, 'text-anchor': 'end', class: 'tick' }, String(Math.round(v * 10) / 10)));
    }
    g.push(svg('text', { x: PAD_L, y: H - 4, 'text-anchor': 'start', class: 'tick' }, hhmm(start)));
    g.push(svg('text', { x: W - PAD_R, y: H - 4, 'text-anchor': 'end', class: 'tick' }, hhmm(end)));
    if (pts.length) {
      // A line through the points, the newest marked.
      const d = pts.map((p, i) => (i ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p.v).toFixed(1)).join(' ');
      g.push(svg('path', { d, class: 'series' }));
      const lastPt = pts[pts.length - 1];
      g.push(svg('circle', { cx: x(lastPt.t), cy: y(lastPt.v), r: 2.5, class: 'series-end' }));
    }
    fig.dataset.points = String(pts.length);
    fig.dataset.max = String(Math.max(0, ...pts.map((p) => p.v)));
    fig.querySelector('.now').textContent = pts.length ? String(pts[pts.length - 1].v) : '';
    const plot = fig.querySelector('svg');
    plot.setAttribute('viewBox', `0 0 ${W} ${H}`);
    plot.replaceChildren(...g);
  }
  function drawCharts() {
    for (const fig of document.querySelectorAll('#charts .chart')) drawChart(fig);
    for (const u of document.querySelectorAll('#charts .unit')) u.textContent = 'per ' + interval.replace(/^(\d+)s$/, '$1 s');
    const n = samples.length;
    $('charts-hint').textContent = !token() ? '' : n < 2 ? '(collecting: a sample every ' + interval + ')' : '(' + n + ' samples, every ' + interval + ')';
  }

  // ---- refresh
  // The element each loader fills: "could not load" there while it has
  // never loaded.
  const targets = new Map([[loadStatus, () => $('status')], [loadLines, () => $('lines')],
    [loadRegistrations, () => $('registrations')], [loadCallbacks, () => $('callbacks')],
    [loadParams, () => form.querySelector('.fields')], [loadAlarms, () => $('alarms')],
    [loadHistory, () => $('charts')]]);
  const loaders = [...targets.keys()];
  async function refresh(...fns) {
    const results = await Promise.allSettled(fns.map((f) => f()));
    let failed = null;
    results.forEach((r, i) => {
      if (r.status !== 'rejected') return;
      failed = failed || r.reason;
      const target = targets.get(fns[i]);
      const t = target && target();
      if (t && t.dataset.state === 'loading') t.dataset.state = 'failed';
    });
    // Show load errors, and clear them once loading works again, without
    // hiding the answer to an action the admin just took.
    if (failed) {
      // (but not over the error of an action the admin just took)
      if (!(shownFrom === 'action' && $('message').dataset.kind === 'error')) message('Could not load: ' + errorText(failed), 'error', 'load');
    } else if (shownFrom === 'load') {
      message('');
    }
  }
  // later coalesces the reloads many events in a row ask for.
  const pending = new Set();
  let laterTimer = 0;
  function later(fn) {
    pending.add(fn);
    if (!laterTimer) {
      laterTimer = setTimeout(() => { laterTimer = 0; const fns = [...pending]; pending.clear(); refresh(...fns); }, 200);
    }
  }

  // The event stream needs the token: it is read with fetch, which sends it.
  let events = null;
  function connect() {
    if (events) events.close();
    events = null;
    const c = $('conn');
    if (!token()) {
      c.dataset.state = 'closed';
      c.textContent = 'not live: enter the admin token';
      return;
    }
    events = stream('/events', {
      line: lineEvent,
      callback: () => { later(loadCallbacks); later(loadStatus); later(loadAlarms); },
      alarm: () => later(loadAlarms),
      params: (p) => renderParams(p),
    }, (up) => {
      c.dataset.state = up ? 'open' : 'closed';
      c.textContent = up ? 'live' : 'offline, reconnecting';
      if (up) later(loadLines);
    }, auth);
  }
  // A new token: what the old one showed goes, and loads again.
  function tokenChanged() {
    for (const id of ['registrations', 'callbacks', 'alarms']) {
      $(id).tBodies[0].replaceChildren();
      $(id).dataset.state = 'loading';
    }
    samples = [];
    $('charts').dataset.state = 'loading';
    connect();
    refresh(...loaders);
  }
  connect();
  refresh(...loaders);
  setInterval(() => refresh(...loaders), POLL_MS);
  setInterval(tick, 1000);
})();
