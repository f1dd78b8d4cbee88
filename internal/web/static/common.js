// Shared by the phone console and the admin page: API calls, error texts,
// the live event stream. No framework; everything under window.callbackd.
'use strict';
(function () {
  const API = '/api/v1';

  // ApiError carries the API's error object {code, message, field}.
  class ApiError extends Error {
    constructor(status, err) {
      super((err && err.message) || ('HTTP ' + status));
      this.status = status;
      this.code = (err && err.code) || '';
      this.field = (err && err.field) || '';
      // details: [{field, message}] when several fields are wrong.
      this.details = (err && Array.isArray(err.details)) ? err.details : [];
    }
  }

  // request calls the API and returns the decoded JSON body (null when
  // empty). A non-2xx answer throws ApiError with the API's message.
  async function request(method, path, body, headers) {
    const init = { method, headers: Object.assign({ Accept: 'application/json' }, headers || {}), credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(API + path, init);
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!res.ok) {
      throw new ApiError(res.status, data && data.error);
    }
    return data;
  }

  // format fills {name} placeholders.
  function format(tmpl, vars) {
    return String(tmpl).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
  }

  // stream opens the server-sent events at path and calls handlers[event]
  // with the decoded data; onConn(true|false) follows the connection.
  // Without headers it is an EventSource, which the browser authenticates
  // with the credentials it has for this origin (the console's line, asked
  // by the 401's Basic challenge). EventSource reconnects by itself after a
  // network error; when the server refuses the stream (401, 403, 503: it
  // is then closed for good) we retry with a backoff.
  // With headers (a function returning them, e.g. the admin token) it reads
  // the stream with fetch, which can send them (EventSource cannot).
  function stream(path, handlers, onConn, headers) {
    if (headers) return fetchStream(path, handlers, onConn, headers);
    let es = null;
    let delay = 1000;
    let timer = 0;
    function open() {
      timer = 0;
      es = new EventSource(API + path);
      es.onopen = () => { delay = 1000; onConn(true); };
      es.onerror = () => {
        onConn(false);
        if (es.readyState === EventSource.CLOSED && !timer) {
          timer = setTimeout(open, delay);
          delay = Math.min(delay * 2, 30000);
        }
      };
      for (const name of Object.keys(handlers)) {
        es.addEventListener(name, (ev) => {
          let data;
          try { data = JSON.parse(ev.data); } catch (e) { return; }
          handlers[name](data);
        });
      }
    }
    open();
    return { close() { clearTimeout(timer); if (es) es.close(); } };
  }

  // fetchStream is stream over fetch: the same events, reconnecting with a
  // backoff; it parses the event-stream format (HTML Living Standard,
  // "Server-sent events": "event:" and "data:" lines, a blank line ends an
  // event, lines starting with ":" are comments).
  function fetchStream(path, handlers, onConn, headers) {
    let closed = false;
    let ctrl = null;
    let timer = 0;
    let delay = 1000;
    function dispatch(block) {
      let name = 'message';
      const data = [];
      for (const line of block.split(/\r\n|\r|\n/)) {
        if (line === '' || line[0] === ':') continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'event') name = value;
        else if (field === 'data') data.push(value);
      }
      if (!data.length || !handlers[name]) return;
      let v;
      try { v = JSON.parse(data.join('\n')); } catch (e) { return; }
      handlers[name](v);
    }
    async function open() {
      timer = 0;
      ctrl = new AbortController();
      try {
        const res = await fetch(API + path, {
          headers: Object.assign({ Accept: 'text/event-stream' }, headers() || {}),
          credentials: 'same-origin', cache: 'no-store', signal: ctrl.signal,
        });
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        delay = 1000;
        onConn(true);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let m;
          while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
            dispatch(buf.slice(0, m.index));
            buf = buf.slice(m.index + m[0].length);
          }
        }
      } catch (e) {
        // network error, refusal, or closed by us
      }
      if (closed) return;
      onConn(false);
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    }
    open();
    return { close() { closed = true; clearTimeout(timer); if (ctrl) ctrl.abort(); } };
  }

  // el creates an element with text and attributes (never innerHTML:
  // everything shown comes from the API and is text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  window.callbackd = { API, ApiError, request, format, stream, el };
})();
