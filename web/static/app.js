// app.js: the dashboard's controller. It logs in, loads the state from the
// API, renders it, keeps it fresh (live events, with a periodic refresh as the
// fallback) and runs the operator's actions.
import { Accounts } from './accounts.js';
import { Api } from './api.js';
import { regionMatrix } from './views.js';
import { $, show } from './dom.js';
import { ProviderForm } from './form.js';
import { AlertsPanel } from './alerts.js';
import { ReportsPanel } from './reports.js';
import { RoutingPanel } from './routing.js';
import { describeAudit, eventItems, maintenanceRows, providerCard, regionalItem, streamRows } from './views.js';

const DEFAULT_REFRESH_SECONDS = 30;
const LIVE_TYPES = ['provider.status', 'provider.created', 'provider.updated', 'provider.deleted',
  'providers.reordered', 'stream.started', 'stream.ended', 'stream.failover', 'budget.alert',
  'maintenance.scheduled', 'maintenance.started', 'maintenance.ended', 'provider.degrading', 'provider.recovered',
  'routing.updated', 'provider.regional'];
const MAX_EVENTS = 50;

/** refreshSeconds is the auto-refresh interval: ?refresh=<seconds> (at least 1), or 30. */
function refreshSeconds() {
  const v = Number(new URLSearchParams(location.search).get('refresh'));
  return Number.isFinite(v) && v >= 1 ? v : DEFAULT_REFRESH_SECONDS;
}

const api = new Api();
const alertsPanel = new AlertsPanel(api);
const reportsPanel = new ReportsPanel(api);
reportsPanel.init();
const routingPanel = new RoutingPanel(api);
const state = {
  me: null,
  providers: [],
  stats: new Map(), // provider name -> ProviderStats
  streams: [],
  expanded: new Set(), // stream ids whose trail is shown
  trails: new Map(), // stream id -> {trail} | {error}
  history: new Map(), // provider name -> {open, window, data, error}
  cardErrors: new Map(), // provider name -> message
  audit: [],
  windows: [], // maintenance windows, newest first
  transitions: [],
  live: [], // events received over SSE, newest first
  lastRefresh: null,
};

let source = null; // EventSource
let timer = 0; // auto-refresh interval
let expiryTimer = 0;
let refreshing = null; // the refresh in flight
let refreshAgain = false;
let debounce = 0;
let dragging = null; // name of the card being dragged
let reopenForm = false;

const form = new ProviderForm(api, (saved) => {
  flash(`Saved ${saved.displayName || saved.name}.`);
  refresh();
});

const accounts = new Accounts(api, (me) => enter(me), () => enter(state.me));

api.onUnauthorized = () => sessionEnded('Your session has ended. Log in again; what you typed is kept.');

// ---- Session -------------------------------------------------------------

async function start() {
  $('#login-form').addEventListener('submit', onLogin);
  $('#logout').addEventListener('click', onLogout);
  $('#refresh').addEventListener('click', () => refresh());
  $('#check-all').addEventListener('click', onCheckAll);
  $('#add-provider').addEventListener('click', () => form.open(null));
  $('#change-password').addEventListener('click', () => { stopLive(); accounts.askPassword(state.me, false); });
  $('#maintenance-form').addEventListener('submit', onSchedule);
  setupDrag();
  accounts.showSSO();
  try {
    enter(await api.me());
  } catch (err) {
    showLogin('');
  }
}

async function onLogin(ev) {
  ev.preventDefault();
  const f = ev.target.elements;
  for (const p of ev.target.querySelectorAll('.field-error')) show(p, '');
  show($('#login-error'), '');
  const btn = ev.target.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    const me = await api.login(f.username.value.trim(), f.password.value);
    f.password.value = '';
    enter(me);
  } catch (err) {
    const fieldErr = err.field && ev.target.querySelector(`[data-error-for="${CSS.escape(err.field)}"]`);
    if (fieldErr) show(fieldErr, err.message);
    else show($('#login-error'), err.message);
    (err.field === 'password' ? f.password : f.username).focus();
  } finally {
    btn.disabled = false;
  }
}

async function onLogout() {
  try {
    await api.logout();
  } catch (err) {
    // The session is gone either way.
  }
  stopLive();
  state.me = null;
  showLogin('You are logged out.');
}

function enter(me) {
  state.me = me;
  $('#whoami').hidden = false;
  $('#user-name').textContent = me.name;
  $('#user-role').textContent = me.role;
  $('#change-password').hidden = me.kind !== 'user';
  if (me.mustChangePassword) {
    // The session may do nothing else until the password is changed.
    stopLive();
    accounts.askPassword(me, true);
    return;
  }
  accounts.hidePassword();
  $('#login-view').hidden = true;
  $('#dashboard').hidden = false;
  $('#whoami').hidden = false;
  $('#user-name').textContent = me.name;
  $('#user-role').textContent = me.role;
  const isAdmin = me.role === 'admin' || me.role === 'superadmin';
  $('#forbidden').hidden = isAdmin;
  for (const el of document.querySelectorAll('[data-role="superadmin"]')) el.hidden = me.role !== 'superadmin';
  $('#check-all').hidden = !isAdmin;
  clearTimeout(expiryTimer);
  if (me.expiresAt) {
    const left = new Date(me.expiresAt).getTime() - Date.now();
    // setTimeout holds at most about 24.8 days.
    if (left > 0 && left < 2 ** 31) expiryTimer = setTimeout(() => checkSession(), left + 1000);
  }
  if (!isAdmin) return;
  accounts.enter(me);
  startLive();
  refresh();
  if (reopenForm) {
    reopenForm = false;
    form.reopen();
  }
}

async function checkSession() {
  try {
    await api.me();
  } catch (err) {
    // onUnauthorized has shown the login page.
  }
}

/** sessionEnded returns to the login page, keeping every typed input. */
function sessionEnded(reason) {
  if (!state.me) return;
  state.me = null;
  stopLive();
  if (form.isOpen) {
    reopenForm = true;
    form.dialog.close(); // keeps the values typed so far
  }
  showLogin(reason);
}

function showLogin(reason) {
  accounts.hidePassword();
  $('#dashboard').hidden = true;
  $('#whoami').hidden = true;
  $('#login-view').hidden = false;
  show($('#login-reason'), reason);
  const f = $('#login-form').elements;
  (f.username.value ? f.password : f.username).focus();
}

// ---- Live updates and refresh -------------------------------------------

function startLive() {
  stopLive();
  timer = setInterval(() => refresh(), refreshSeconds() * 1000);
  source = new EventSource('/api/events');
  source.addEventListener('open', () => setLive('live'));
  source.addEventListener('error', () => setLive(source && source.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting…'));
  for (const type of LIVE_TYPES) source.addEventListener(type, (ev) => onEvent(type, ev));
  source.addEventListener('resync', () => refresh());
}

function stopLive() {
  clearInterval(timer);
  clearTimeout(debounce);
  clearTimeout(expiryTimer);
  if (source) source.close();
  source = null;
  setLive('offline');
  if (!refreshing) setBusy(false);
}

function setLive(text) {
  const el = $('#live-status');
  el.textContent = text;
  el.classList.toggle('on', text === 'live');
}

function onEvent(type, ev) {
  let msg;
  try {
    msg = JSON.parse(ev.data);
  } catch (err) {
    return;
  }
  const d = msg.data || {};
  const item = liveItem(type, d, msg.at || new Date().toISOString());
  if (item) {
    item.key = 'ev:' + (msg.id ?? ev.lastEventId);
    state.live.unshift(item);
    state.live.length = Math.min(state.live.length, MAX_EVENTS);
    renderEvents();
  }
  // Coalesce bursts (Check All publishes one event per provider).
  clearTimeout(debounce);
  setBusy(true);
  debounce = setTimeout(() => refresh(), 150);
}

/** setBusy marks the dashboard busy (aria-busy) while its data is reloading. */
function setBusy(busy) {
  $('#dashboard').setAttribute('aria-busy', String(busy));
}

function liveItem(type, d, at) {
  switch (type) {
    case 'provider.status':
      return null; // transitions come from the history, which the refresh reloads
    case 'stream.failover':
      return { at, kind: 'failover', label: 'failover', body: `stream ${d.streamId} moved ${d.from} → ${d.to}${d.reason ? ` (${d.reason})` : ''}` };
    case 'budget.alert':
      return { at, kind: 'budget', label: 'budget', body: `${d.provider} reached ${d.threshold}% of its ${d.month} budget` };
    case 'maintenance.started':
      return { at, kind: 'maintenance', label: 'maintenance', body: `maintenance of ${d.provider} started: ${d.reason}` };
    case 'provider.degrading':
      return { at, kind: 'degrading', label: 'degrading', body: `${d.provider} is degrading: ${(d.evidence || []).map((e) => e.summary).join('; ')}` };
    case 'provider.recovered':
      return { at, kind: 'degrading', label: 'recovered', body: `${d.provider} is no longer degrading` };
    case 'provider.regional':
      return regionalItem(d, at);
    default:
      return null; // registry changes arrive through the audit log
  }
}

/** refresh reloads everything; calls made while one runs coalesce into one more. */
function refresh() {
  if (!state.me) return Promise.resolve();
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  setBusy(true);
  refreshing = (async () => {
    try {
      do {
        refreshAgain = false;
        await load();
      } while (refreshAgain && state.me);
    } finally {
      refreshing = null;
      setBusy(false);
    }
  })();
  return refreshing;
}

async function load() {
  try {
    const [prov, stats, streams, audit, maint] = await Promise.all([api.providers(), api.stats(), api.activeStreams(), api.audit(), api.maintenance()]);
    state.providers = prov.providers || [];
    state.windows = maint.windows || [];
    state.stats = new Map((stats.providers || []).map((x) => [x.name, x]));
    state.streams = streams.streams || [];
    state.audit = audit.entries || [];
    const names = new Set(state.providers.map((p) => p.name));
    for (const n of state.history.keys()) if (!names.has(n)) state.history.delete(n);
    const histories = await Promise.all(state.providers.map((p) => {
      const w = state.history.get(p.name)?.window || '24h';
      return api.history(p.name, w).then((data) => [p.name, w, data], (err) => [p.name, w, null, err]);
    }));
    state.transitions = [];
    for (const [name, w, data, err] of histories) {
      const hist = state.history.get(name);
      if (hist && hist.window === w) {
        hist.data = data;
        hist.error = err ? err.message : '';
      }
      if (data) state.transitions.push(...(data.transitions || []));
    }
    // Trails of expanded streams that are still active.
    const active = new Set(state.streams.map((x) => x.id));
    for (const id of [...state.expanded]) if (!active.has(id)) state.expanded.delete(id);
    await Promise.all([...state.expanded].map(loadTrail));
    await alertsPanel.load();
    await routingPanel.load();
    state.lastRefresh = new Date();
    show($('#action-error'), '');
    render();
  } catch (err) {
    if (err.status === 401) return;
    show($('#action-error'), `Refresh failed: ${err.message}`);
  }
}

async function loadTrail(id) {
  try {
    const st = await api.stream(id);
    state.trails.set(id, { trail: st.trail || [] });
  } catch (err) {
    state.trails.set(id, { error: err.message });
  }
}

// ---- Rendering ------------------------------------------------------------

function render() {
  // Re-rendering would drop the dragged card; and once the session has ended
  // (an action's answer may come after it), there is no dashboard to render.
  if (dragging || !state.me) return;
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focus : undefined;
  renderProviders();
  renderRegions();
  renderMaintenance();
  renderStreams();
  alertsPanel.render();
  routingPanel.render(state.me.role);
  renderEvents();
  if (focused) {
    const el = document.querySelector(`[data-focus="${CSS.escape(focused)}"]`);
    if (el && !el.disabled) el.focus();
  }
  const t = state.lastRefresh;
  $('#refresh-status').textContent = t ? `Updated ${t.toLocaleTimeString()}` : '';
}

function renderProviders() {
  const list = $('#providers');
  const count = state.providers.length;
  const actions = { setEnabled, moveTo, check, edit: (p) => form.open(p), remove, toggleHistory, historyWindow };
  list.replaceChildren(...state.providers.map((p, index) => providerCard(p, {
    index, count, role: state.me.role, stats: state.stats.get(p.name), history: state.history.get(p.name),
    error: state.cardErrors.get(p.name), maintenance: blockingWindow(p.name), actions,
  })));
  if (count === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'No provider yet.';
    list.append(li);
  }
  $('#no-healthy-banner').hidden = count === 0 || state.providers.some((p) => p.usable);
}

/** renderRegions shows the provider × region matrix, when any provider has regional health. */
function renderRegions() {
  const { regions, nodes } = regionMatrix(state.providers);
  $('#regions-section').hidden = regions.length === 0;
  $('#regions-matrix').replaceChildren(...nodes);
}

/** blockingWindow is the window that keeps a provider from new streams now, if any. */
function blockingWindow(name) {
  const now = Date.now();
  return state.windows.find((w) => w.provider === name && (w.state === 'active'
    || (w.state === 'upcoming' && w.drainStart && new Date(w.drainStart).getTime() <= now)));
}

function renderMaintenance() {
  const open = state.windows.filter((w) => w.state !== 'past').reverse(); // soonest first
  const past = state.windows.filter((w) => w.state === 'past').slice(0, 10);
  const canWrite = state.me.role === 'admin' || state.me.role === 'superadmin';
  $('#maintenance tbody').replaceChildren(...maintenanceRows([...open, ...past], canWrite, endWindow));
  $('#maintenance-count').textContent = `${open.length} scheduled or active`;
  const sel = $('#mf-provider');
  const chosen = sel.value;
  sel.replaceChildren(...state.providers.map((p) => {
    const o = document.createElement('option');
    o.value = p.name;
    o.textContent = p.displayName || p.name;
    return o;
  }));
  if (state.providers.some((p) => p.name === chosen)) sel.value = chosen;
}

function renderStreams() {
  $('#streams tbody').replaceChildren(...streamRows(state.streams, state.expanded, state.trails, toggleTrail));
  $('#streams-count').textContent = `${state.streams.length} active`;
}

function renderEvents() {
  const items = [
    ...state.live,
    ...state.transitions.map((t) => ({
      key: 'tr:' + t.id, at: t.at, kind: 'transition', label: 'status',
      body: `${t.provider}: ${t.from} → ${t.to}${t.reason ? ` (${t.reason})` : ''}`,
    })),
    ...state.audit.map((en) => ({ key: 'au:' + en.id, at: en.at, kind: 'audit', label: 'admin', body: describeAudit(en) })),
  ];
  items.sort((a, b) => new Date(b.at) - new Date(a.at));
  $('#events').replaceChildren(...eventItems(items.slice(0, MAX_EVENTS)));
}

function flash(text) {
  const el = $('#order-status');
  show(el, text);
}

function cardError(name, err) {
  if (err && err.status === 401) return;
  if (err) state.cardErrors.set(name, err.message);
  else state.cardErrors.delete(name);
  if (!dragging && state.me) renderProviders();
}

// ---- Actions ----------------------------------------------------------------

async function setEnabled(p, enabled, input) {
  input.disabled = true;
  try {
    const updated = await api.update(p.name, { enabled });
    state.providers = state.providers.map((x) => (x.name === updated.name ? updated : x));
    state.cardErrors.delete(p.name);
    render();
    flash(`${updated.displayName || updated.name} is now ${updated.enabled ? 'enabled' : 'disabled'}.`);
    refresh();
  } catch (err) {
    input.checked = !enabled;
    input.disabled = false;
    cardError(p.name, err);
  }
}

/** moveTo moves a provider to position index and saves the whole order. */
async function moveTo(name, index) {
  const order = state.providers.map((p) => p.name);
  const from = order.indexOf(name);
  const to = Math.max(0, Math.min(order.length - 1, Number.isFinite(index) ? index : from));
  if (from < 0 || from === to) {
    render();
    return;
  }
  order.splice(from, 1);
  order.splice(to, 0, name);
  await saveOrder(order, name);
}

async function saveOrder(order, moved) {
  try {
    const res = await api.reorder(order);
    state.providers = res.providers || [];
    state.cardErrors.delete(moved);
    render();
    // The order the server confirms, not the one we asked for.
    flash(`Failover order saved: ${state.providers.map((p, i) => `${i + 1}. ${p.displayName || p.name}`).join(', ')}.`);
    refresh();
  } catch (err) {
    cardError(moved, err);
    refresh();
  }
}

async function check(name, btn) {
  btn.disabled = true;
  btn.textContent = 'Checking…';
  try {
    await api.check(name);
    state.cardErrors.delete(name);
    await refresh();
  } catch (err) {
    cardError(name, err);
  }
}

async function onCheckAll(ev) {
  const btn = ev.currentTarget;
  btn.disabled = true;
  btn.textContent = 'Checking…';
  try {
    await api.checkAll();
    show($('#action-error'), '');
    await refresh();
  } catch (err) {
    if (err.status !== 401) show($('#action-error'), `Check All failed: ${err.message}`);
  } finally {
    btn.disabled = false;
    btn.textContent = 'Check All';
  }
}

async function remove(name, btn) {
  if (btn.dataset.armed !== 'true') {
    btn.dataset.armed = 'true';
    btn.textContent = 'Confirm delete';
    setTimeout(() => {
      if (btn.isConnected) {
        btn.dataset.armed = 'false';
        btn.textContent = 'Delete';
      }
    }, 5000);
    return;
  }
  try {
    await api.remove(name);
    state.history.delete(name);
    flash(`Deleted ${name}.`);
    await refresh();
  } catch (err) {
    cardError(name, err);
  }
}

async function toggleHistory(name) {
  const hist = state.history.get(name) || { open: false, window: '24h', data: null, error: '' };
  hist.open = !hist.open;
  state.history.set(name, hist);
  render();
  if (hist.open) await loadHistory(name, hist.window);
}

async function historyWindow(name, window) {
  const hist = state.history.get(name);
  hist.window = window;
  hist.data = null;
  render();
  await loadHistory(name, window);
}

async function loadHistory(name, window) {
  const hist = state.history.get(name);
  try {
    const data = await api.history(name, window);
    if (hist.window === window) Object.assign(hist, { data, error: '' });
  } catch (err) {
    if (hist.window === window) Object.assign(hist, { data: null, error: err.message });
  }
  render();
}

async function toggleTrail(id) {
  if (state.expanded.has(id)) {
    state.expanded.delete(id);
    render();
    return;
  }
  state.expanded.add(id);
  render();
  await loadTrail(id);
  render();
}

// ---- Maintenance windows --------------------------------------------------

/** isoOf turns a datetime-local value (the browser's time zone) into RFC 3339. */
function isoOf(local) {
  if (!local) return '';
  const t = new Date(local);
  return Number.isNaN(t.getTime()) ? local : t.toISOString();
}

async function onSchedule(ev) {
  ev.preventDefault();
  const f = ev.target.elements;
  for (const p of ev.target.querySelectorAll('.field-error')) show(p, '');
  show($('#mf-error'), '');
  const input = { provider: f.provider.value, reason: f.reason.value, end: isoOf(f.end.value), drain: f.drain.checked };
  if (f.start.value) input.start = isoOf(f.start.value);
  if (f.drain.checked) input.drainRate = Number(f.drainRate.value);
  const btn = ev.target.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    const w = await api.scheduleMaintenance(input);
    f.reason.value = '';
    f.start.value = '';
    f.end.value = '';
    f.drain.checked = false;
    flash(`Maintenance of ${w.provider} scheduled (${w.state}).`);
    await refresh();
  } catch (err) {
    if (err.status === 401) return;
    const fieldErr = err.field && ev.target.querySelector(`[data-error-for="${CSS.escape(err.field)}"]`);
    if (fieldErr) show(fieldErr, err.message);
    else show($('#mf-error'), err.message);
    const el = err.field && ev.target.querySelector(`[data-field="${CSS.escape(err.field)}"]`);
    if (el) el.focus();
  } finally {
    btn.disabled = false;
  }
}

async function endWindow(w, btn) {
  btn.disabled = true;
  try {
    await api.endMaintenance(w.id);
    show($('#maintenance-error'), '');
    flash(`Maintenance of ${w.provider} ended.`);
    await refresh();
  } catch (err) {
    btn.disabled = false;
    if (err.status !== 401) show($('#maintenance-error'), `Ending the window failed: ${err.message}`);
  }
}

// ---- Drag to reorder ------------------------------------------------------

function setupDrag() {
  const list = $('#providers');
  list.addEventListener('dragstart', (ev) => {
    const card = ev.target.closest && ev.target.closest('[data-provider]');
    if (!card) return;
    dragging = card.dataset.provider;
    card.classList.add('dragging');
    ev.dataTransfer.effectAllowed = 'move';
    ev.dataTransfer.setData('text/plain', dragging);
  });
  list.addEventListener('dragover', (ev) => {
    if (!dragging) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'move';
  });
  list.addEventListener('drop', (ev) => {
    ev.preventDefault();
    const target = ev.target.closest && ev.target.closest('[data-provider]');
    const name = dragging;
    dragging = null;
    if (!name || !target || target.dataset.provider === name) {
      render();
      return;
    }
    const order = state.providers.map((p) => p.name).filter((n) => n !== name);
    let at = order.indexOf(target.dataset.provider);
    const box = target.getBoundingClientRect();
    if (ev.clientY > box.top + box.height / 2) at += 1;
    order.splice(at, 0, name);
    saveOrder(order, name);
  });
  list.addEventListener('dragend', () => {
    if (dragging) {
      dragging = null;
      render();
    }
  });
}

start();
