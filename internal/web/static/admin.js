// The admin page (B4, F32, F35-F37): lines and their devices,
// registrations, open call backs with their timers, the service parameters
// (a form that PUTs the changed ones), which instance is active, recent
// alarms. Refreshed from the server-sent events and by polling. The admin
// token (asked once, kept in sessionStorage for this tab) goes with every
// request: writes need it, and so do the registrations, call backs, alarms
// and the event stream (B7), which are not loaded without it.
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

  function message(text, kind) {
    const m = $('message');
    m.textContent = text || '';
    m.dataset.kind = text ? (kind || 'error') : '';
  }

  function errorText(e) {
    if (e instanceof ApiError && e.status === 401) {
      return 'Not authorized: enter the admin token above (' + e.message + ')';
    }
    return e.message;
  }

  // read loads an admin-only resource: without a token it is not asked for
  // (a 401 would only repeat what the page says) and shows as empty.
  async function read(path) {
    if (!token()) return [];
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
  function fill(table, rows) {
    const body = $(table).tBodies[0];
    body.replaceChildren(...rows);
    $(table).dataset.count = String(rows.length);
  }
  function list(v) { return Array.isArray(v) ? v : []; }
  function count(v) { return Array.isArray(v) ? v.length : (v === undefined || v === null ? '' : v); }

  // ---- sections
  async function loadStatus() {
    const s = await request('GET', '/status');
    const rows = [
      ['Instance', s.instance], ['Active', s.active ? 'yes (this instance serves)' : 'no (standing by)'],
      ['Started', when(s.started)], ['Lines', s.lines], ['Registrations', s.registrations],
      ['Open requests', s.open_requests], ['Notifications sent', s.notifications], ['Active calls', s.active_calls],
    ];
    const dl = $('status');
    dl.dataset.active = String(!!s.active);
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
    const lines = list(await request('GET', '/lines'));
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
    const regs = list(await read('/registrations'));
    fill('registrations', regs.map((r) => el('tr', { 'data-dn': r.dn },
      el('td', null, r.dn), el('td', { class: 'mono' }, r.contact), el('td', null, r.transport),
      el('td', { class: 'mono' }, r.source), el('td', null, r.expires ? countdown(r.expires) : ''))));
  }

  async function loadCallbacks() {
    const cbs = list(await read('/callbacks'));
    fill('callbacks', cbs.map((c) => el('tr', { 'data-id': c.id, 'data-caller': c.caller, 'data-callee': c.callee, 'data-state': c.state },
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

  async function loadAlarms() {
    const alarms = list(await read('/alarms')).slice().reverse(); // newest first
    fill('alarms', alarms.map((a) => el('tr', { 'data-level': a.level },
      el('td', null, when(a.time)), el('td', { class: 'level' }, a.level), el('td', null, a.message))));
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
  async function loadParams() { renderParams(await request('GET', '/params')); }

  // ---- refresh
  const loaders = [loadStatus, loadLines, loadRegistrations, loadCallbacks, loadParams, loadAlarms];
  let lastError = '';
  async function refresh(...fns) {
    const results = await Promise.allSettled(fns.map((f) => f()));
    const failed = results.find((r) => r.status === 'rejected');
    const text = failed ? 'Could not load: ' + errorText(failed.reason) : '';
    // Show load errors, and clear them once loading works again, without
    // hiding the answer to an action the admin just took.
    if (text !== lastError && (text || $('message').textContent === lastError)) message(text);
    lastError = text;
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
      params: (p) => renderParams(p),
    }, (up) => {
      c.dataset.state = up ? 'open' : 'closed';
      c.textContent = up ? 'live' : 'offline, reconnecting';
      if (up) later(loadLines);
    }, auth);
  }
  function tokenChanged() {
    connect();
    refresh(...loaders);
  }
  connect();
  refresh(...loaders);
  setInterval(() => refresh(...loaders), POLL_MS);
  setInterval(tick, 1000);
})();
