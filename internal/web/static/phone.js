// The web phone console of one line (B4): the line's current Call Back
// screen in its locale, the line state, and the softkeys: CallBack always,
// then the keys the API lists for the screen (Dial, Cancel, Exit, OK).
// Live through the server-sent events; a key press is a POST to the API.
// Both need the line's credentials (HTTP Basic): the browser asks for them
// at the first 401 (the event stream's) and sends them from then on.
'use strict';
(function () {
  const { request, format, stream, el, ApiError } = window.callbackd;
  const $ = (id) => document.getElementById(id);

  // The DN comes from the path: /phone/{dn}.
  const dn = decodeURIComponent(location.pathname.replace(/\/+$/, '').split('/').pop() || '');
  const linePath = '/lines/' + encodeURIComponent(dn);

  // English fallback while (or if) /api/v1/ui/{locale} is not loaded.
  const fallbackUI = {
    'console.title': 'Phone {dn}',
    'console.noScreen': 'No screen',
    'console.connected': 'Live',
    'console.disconnected': 'Offline, reconnecting',
    'console.line': 'Line',
    'console.locale': 'Locale',
    'console.state': 'State',
    'console.state.idle': 'idle',
    'console.state.ringing': 'ringing',
    'console.state.busy': 'busy',
    'console.state.unregistered': 'unregistered',
    'console.error.unauthorized': 'Not authorized: log in with the line number and its password',
    'console.error.failed': 'Request failed: {error}',
  };

  let ui = Object.assign({}, fallbackUI);
  let uiLocale = '';
  let screen = { dn, kind: '', text: '', keys: [], labels: {}, state: '', locale: '' };
  let state = '';
  let connected = null;
  let screenEvents = 0; // screen updates from the stream: they win over an older POST answer
  let busy = false;

  function t(id, vars) {
    return format(id in ui ? ui[id] : (fallbackUI[id] || id), Object.assign({ dn }, vars || {}));
  }

  async function loadUI(locale) {
    if (!locale || locale === uiLocale) return;
    uiLocale = locale;
    try {
      const texts = await request('GET', '/ui/' + encodeURIComponent(locale));
      if (texts && typeof texts === 'object') ui = Object.assign({}, fallbackUI, texts);
    } catch (e) {
      uiLocale = ''; // try again with the next screen
    }
    renderChrome();
  }

  // renderChrome draws everything that depends on the UI texts only.
  function renderChrome() {
    document.title = t('console.title');
    if (screen.locale) document.documentElement.lang = screen.locale;
    $('title').textContent = t('console.title');
    $('label-line').textContent = t('console.line');
    $('label-locale').textContent = t('console.locale');
    $('label-state').textContent = t('console.state');
    $('line').textContent = dn;
    $('locale').textContent = screen.locale || '';
    $('screen').dataset.placeholder = t('console.noScreen');
    renderState();
    renderConn();
  }

  function renderState() {
    const s = $('state');
    s.dataset.state = state;
    s.textContent = state ? t('console.state.' + state) : '';
    if (s.textContent === 'console.state.' + state) s.textContent = state;
  }

  function renderConn() {
    const c = $('conn');
    if (connected === null) { c.dataset.state = 'connecting'; c.textContent = ''; return; }
    c.dataset.state = connected ? 'open' : 'closed';
    c.textContent = connected ? t('console.connected') : t('console.disconnected');
  }

  function renderScreen(s) {
    if (!s || (s.dn && s.dn !== dn)) return;
    screen = Object.assign({ keys: [], labels: {} }, s);
    const scr = $('screen');
    scr.textContent = screen.text || '';
    scr.dataset.kind = screen.kind || 'None';
    if (screen.state) state = screen.state;
    renderKeys();
    renderChrome();
    loadUI(screen.locale);
  }

  // renderKeys keeps the buttons that stay (a click in flight is not lost)
  // and adds, removes and orders them as the screen says.
  function renderKeys() {
    const box = $('softkeys');
    const want = ['CallBack'].concat((screen.keys || []).filter((k) => k !== 'CallBack'));
    const have = new Map();
    for (const b of box.querySelectorAll('button[data-key]')) have.set(b.dataset.key, b);
    for (const [k, b] of have) if (!want.includes(k)) b.remove();
    want.forEach((k, i) => {
      let b = have.get(k);
      if (!b) {
        b = el('button', { type: 'button', dataset: { key: k }, onclick: () => press(k) });
      }
      b.textContent = (screen.labels && screen.labels[k]) || k;
      b.disabled = busy;
      if (box.children[i] !== b) box.insertBefore(b, box.children[i] || null);
    });
  }

  function setStatus(text, kind) {
    const st = $('status');
    st.textContent = text || '';
    st.dataset.kind = text ? (kind || 'error') : '';
  }

  async function press(key) {
    if (busy) return;
    busy = true;
    renderKeys();
    setStatus('');
    const seen = screenEvents;
    try {
      const s = await request('POST', linePath + '/keys', { key });
      // The stream reports every change; an event that came in meanwhile
      // is at least as new as this answer.
      if (screenEvents === seen) renderScreen(s);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        setStatus(t('console.error.unauthorized'));
      } else {
        setStatus(e instanceof ApiError ? e.message : t('console.error.failed', { error: e.message }));
      }
    } finally {
      busy = false;
      renderKeys();
    }
  }

  async function loadScreen() {
    try {
      renderScreen(await request('GET', linePath + '/screen'));
    } catch (e) {
      setStatus(e instanceof ApiError ? e.message : t('console.error.failed', { error: e.message }));
    }
  }

  renderChrome();
  renderKeys();
  loadScreen();
  stream('/events?line=' + encodeURIComponent(dn), {
    screen: (s) => { if (!s.dn || s.dn === dn) { screenEvents++; renderScreen(s); } },
    line: (l) => { if (l.dn === dn) { state = l.state || ''; renderState(); } },
  }, (up) => { connected = up; renderConn(); });
})();
