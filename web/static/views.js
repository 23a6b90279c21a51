// views.js: the parts of the page built from API data: provider cards, the
// active streams table with decision trails, and the recent events list.
import { h } from './dom.js';
import { axisTime, exact, money, ms, percent, plural, relative, shortTime } from './format.js';
import { lineChart } from './charts.js';

const STATUS_CLASS = {
  EXCELLENT: 'good', HEALTHY: 'good', WARNING: 'warn', CRITICAL: 'bad', DISABLED: 'off', UNKNOWN: 'off',
};

/** badge is a provider status with its word and a colour; never colour alone. */
export function badge(status) {
  const st = status || 'UNKNOWN';
  return h('span', { class: `badge ${STATUS_CLASS[st] || 'off'}`, dataset: { stat: 'status' } }, st);
}

function stat(label, value, key, extra = {}) {
  return [h('dt', {}, label), h('dd', { dataset: { stat: key }, ...extra }, value)];
}

/**
 * windowLabel shortens a Go duration of a health window for a label: "24h0m0s"
 * reads "24h", "720h0m0s" reads "30d", "1h30m0s" reads "1h30m".
 */
export function windowLabel(d) {
  if (!d) return '24h';
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?$/.exec(d);
  if (!m) return d;
  const [hours, mins, secs] = [Number(m[1] || 0), Number(m[2] || 0), Number(m[3] || 0)];
  if (hours > 24 && hours % 24 === 0 && !mins && !secs) return `${hours / 24}d`;
  return [hours ? `${hours}h` : '', mins ? `${mins}m` : '', secs ? `${secs}s` : ''].join('') || d;
}

/** todayBlock shows what happened on a provider since the last UTC midnight. */
function todayBlock(t) {
  const today = t || {};
  return h('div', { class: 'today' },
    h('h4', {}, 'Today ', h('span', { class: 'muted' }, '(UTC)')),
    h('dl', { class: 'stats' },
      stat('Streams started', String(today.streamsStarted ?? 0), 'todayStarted'),
      stat('Failovers in / out', `${today.failoversIn ?? 0} / ${today.failoversOut ?? 0}`, 'todayFailovers'),
      stat('Client failures', String(today.clientFailures ?? 0), 'todayClientFailures'),
      stat('Stream minutes', String(Math.round(today.streamMinutes ?? 0)), 'todayMinutes')));
}

function timeEl(iso, key) {
  return h('time', { dateTime: iso || '', title: exact(iso), dataset: { stat: key } }, relative(iso));
}

/**
 * providerCard builds one provider's card.
 * ctx: {index, count, role, stats, history: {open, window, data, error}, error, actions}
 */
export function providerCard(p, ctx) {
  const st = ctx.stats || {};
  const a = ctx.actions;
  const label = p.displayName || p.name;
  const canWrite = ctx.role === 'admin' || ctx.role === 'superadmin';
  const focusKey = (k) => `${p.name}:${k}`;

  const head = h('div', { class: 'card-head' },
    h('span', { class: 'grip', 'aria-hidden': 'true', title: 'Drag to reorder' }, '⋮⋮'),
    h('h3', { id: `prov-${p.name}-title` }, label,
      h('span', { class: 'muted kind' }, ` ${p.name} · ${p.kind}`)),
    badge(p.status));

  const alert = p.status === 'CRITICAL'
    ? h('p', { class: 'failover-alert', role: 'alert' },
      '⚠ Automatic failover will activate',
      h('span', { class: 'failures' }, ` — ${plural(p.consecutiveFailures, 'consecutive failure')}`))
    : null;
  const maint = ctx.maintenance
    ? h('p', { class: 'maintenance-note', dataset: { stat: 'maintenance' } },
      h('span', { class: 'pill warn' }, ctx.maintenance.state === 'active' ? 'in maintenance' : 'draining'),
      ` until ${exact(ctx.maintenance.endedAt || ctx.maintenance.end)}: ${ctx.maintenance.reason} — takes no new streams`)
    : null;
  // The server's prediction, shown as is, with its evidence.
  const degrading = p.degrading
    ? h('p', { class: 'degrading-note', dataset: { stat: 'degrading' } },
      h('span', { class: 'pill warn' }, 'degrading'),
      ` since ${exact(p.degradation && p.degradation.since)}: ${((p.degradation && p.degradation.evidence) || []).map((e) => e.summary).join('; ')}`)
    : null;
  const lastError = p.lastError && p.status !== 'DISABLED'
    ? h('p', { class: 'muted last-error' }, `Last error (${p.lastError.stage}): ${p.lastError.message}`)
    : null;

  const budget = st.monthlyBudget > 0
    ? h('span', {},
      `${money(st.monthlyCost, st.currency)} of ${money(st.monthlyBudget, st.currency)}`,
      h('meter', {
        min: 0, max: 100, low: 80, high: 95, optimum: 0, value: Math.min(st.budgetUsedPercent ?? 0, 100),
        'aria-label': `${percent(st.budgetUsedPercent ?? 0)} of the monthly budget used`,
      }))
    : `${money(st.monthlyCost ?? 0, st.currency)} (no budget)`;

  const win = windowLabel(p.healthCheck && p.healthCheck.window);
  const dl = h('dl', { class: 'stats' },
    stat(`Uptime (${win})`, percent(p.uptime), 'uptime'),
    stat(`Error rate (${win})`, percent(p.errorRate), 'errorRate'),
    stat('Active streams', String(st.activeStreams ?? 0), 'active'),
    stat('Total streams', String(st.totalStreams ?? 0), 'total'),
    // The server's verdict, shown as is: the dashboard never derives it from the status.
    stat('Takes streams', p.usable ? 'yes' : 'no', 'usable',
      { title: p.usable ? 'Usable: new streams may go here' : (p.status === 'UNKNOWN' ? 'Not verified: no check has succeeded yet' : `Not usable: ${p.status}`) }),
    stat('Consecutive failures', String(p.consecutiveFailures ?? 0), 'failures'),
    stat(`Client failures (${win})`, String(p.clientFailures ?? 0), 'clientFailures'),
    h('dt', {}, 'Last check'), h('dd', {}, timeEl(p.lastCheck, 'lastCheck')),
    stat('Latency', p.lastCheck ? ms(p.latency) : '—', 'latency'),
    h('dt', {}, 'Cost this month'), h('dd', { dataset: { stat: 'cost' } }, budget));

  const controls = h('div', { class: 'controls' });
  if (canWrite) {
    controls.append(
      h('label', { class: 'switch' },
        h('input', {
          type: 'checkbox', name: 'enabled', checked: p.enabled, dataset: { focus: focusKey('enabled') },
          onchange: (ev) => a.setEnabled(p, ev.target.checked, ev.target),
        }),
        ' Enabled'),
      h('div', { class: 'position', role: 'group', 'aria-label': `Position of ${label} in the failover order` },
        h('label', { for: `pos-${p.name}` }, 'Position'),
        h('input', {
          id: `pos-${p.name}`, type: 'number', name: 'position', min: 1, max: ctx.count, value: ctx.index + 1,
          inputMode: 'numeric', dataset: { focus: focusKey('position') },
          onchange: (ev) => a.moveTo(p.name, Number(ev.target.value) - 1),
        }),
        h('button', {
          type: 'button', class: 'icon', 'aria-label': `Move ${label} up`, title: 'Move up', disabled: ctx.index === 0,
          dataset: { focus: focusKey('up'), action: 'up' }, onclick: () => a.moveTo(p.name, ctx.index - 1),
        }, '↑'),
        h('button', {
          type: 'button', class: 'icon', 'aria-label': `Move ${label} down`, title: 'Move down', disabled: ctx.index === ctx.count - 1,
          dataset: { focus: focusKey('down'), action: 'down' }, onclick: () => a.moveTo(p.name, ctx.index + 1),
        }, '↓')),
      h('button', { type: 'button', dataset: { focus: focusKey('check'), action: 'check' }, onclick: (ev) => a.check(p.name, ev.currentTarget) }, 'Check now'),
      h('button', { type: 'button', dataset: { focus: focusKey('edit'), action: 'edit' }, onclick: () => a.edit(p) }, 'Edit'));
    if (ctx.role === 'superadmin') {
      controls.append(h('button', {
        type: 'button', class: 'danger', dataset: { focus: focusKey('delete'), action: 'delete' },
        onclick: (ev) => a.remove(p.name, ev.currentTarget),
      }, 'Delete'));
    }
  }
  const hist = ctx.history || {};
  controls.append(h('button', {
    type: 'button', 'aria-expanded': String(Boolean(hist.open)), 'aria-controls': `hist-${p.name}`,
    dataset: { focus: focusKey('history'), action: 'history' }, onclick: () => a.toggleHistory(p.name),
  }, 'History'));

  const error = h('p', { class: 'form-error card-error', role: 'alert', hidden: !ctx.error }, ctx.error || '');

  const card = h('li', {
    class: `card ${STATUS_CLASS[p.status] || 'off'}`, draggable: canWrite,
    dataset: { provider: p.name }, 'aria-labelledby': `prov-${p.name}-title`,
  }, head, alert, maint, degrading, lastError, dl, todayBlock(p.today), controls, error);
  if (hist.open) card.append(historyPanel(p, hist, a, focusKey));
  return card;
}

function historyPanel(p, hist, a, focusKey) {
  const windows = ['24h', '7d', '30d'];
  const tabs = h('div', { class: 'segmented', role: 'group', 'aria-label': 'History window' },
    windows.map((w) => h('button', {
      type: 'button', 'aria-pressed': String(hist.window === w), dataset: { focus: focusKey('win-' + w) },
      onclick: () => a.historyWindow(p.name, w),
    }, w)));
  const panel = h('div', { class: 'history', id: `hist-${p.name}` }, tabs);
  if (hist.error) {
    panel.append(h('p', { class: 'form-error', role: 'alert' }, hist.error));
  } else if (!hist.data) {
    panel.append(h('p', { class: 'muted' }, 'Loading…'));
  } else {
    const pts = hist.data.points || [];
    const days = hist.window !== '24h';
    panel.append(
      lineChart({
        title: `Uptime of ${p.displayName || p.name}, ${hist.window}`, unit: '%', yMax: 100, days,
        series: [{ name: 'Uptime', cls: 'uptime', points: pts.map((x) => ({ at: x.at, value: x.uptime })) }],
      }),
      lineChart({
        title: `Latency of ${p.displayName || p.name}, ${hist.window}`, unit: ' ms', days,
        series: [
          { name: 'Average', cls: 'latency', points: pts.map((x) => ({ at: x.at, value: x.averageLatency })) },
          { name: 'Max', cls: 'latency-max', points: pts.map((x) => ({ at: x.at, value: x.maxLatency })) },
        ],
      }),
      h('p', { class: 'legend muted' },
        h('span', { class: 'key uptime' }, 'uptime'), ' ', h('span', { class: 'key latency' }, 'average latency'), ' ',
        h('span', { class: 'key latency-max' }, 'max latency')));
  }
  return panel;
}

/**
 * streamRows builds the rows of the active streams table: one per stream and,
 * for an expanded stream, a row with its decision trail.
 */
export function streamRows(streams, expanded, trails, toggle) {
  if (streams.length === 0) {
    return [h('tr', {}, h('td', { colSpan: 9, class: 'muted' }, 'No active streams.'))];
  }
  const rows = [];
  for (const st of streams) {
    const open = expanded.has(st.id);
    rows.push(h('tr', { dataset: { stream: st.id } },
      h('td', {}, h('button', {
        type: 'button', class: 'icon', 'aria-expanded': String(open), 'aria-controls': `trail-${st.id}`,
        'aria-label': `Decision trail of stream ${st.id}`, dataset: { focus: `stream:${st.id}` }, onclick: () => toggle(st.id),
      }, open ? '▾' : '▸')),
      h('td', {}, h('code', {}, st.id)),
      h('td', {}, st.room), h('td', {}, st.userId), h('td', {}, st.role),
      h('td', { dataset: { stat: 'provider' } }, st.provider), h('td', {}, st.quality),
      h('td', {}, h('time', { dateTime: st.startedAt, title: exact(st.startedAt) }, relative(st.startedAt))),
      h('td', {}, String(st.migrations))));
    if (open) {
      const t = trails.get(st.id);
      const cell = h('td', { colSpan: 9 });
      if (!t) cell.append(h('p', { class: 'muted' }, 'Loading…'));
      else if (t.error) cell.append(h('p', { class: 'form-error', role: 'alert' }, t.error));
      else cell.append(trailList(t.trail));
      rows.push(h('tr', { class: 'trail-row', id: `trail-${st.id}` }, cell));
    }
  }
  return rows;
}

function trailList(trail) {
  return h('ol', { class: 'trail' }, trail.map((e) => h('li', {},
    h('time', { dateTime: e.at, title: exact(e.at) }, shortTime(e.at)), ' ',
    h('strong', {}, e.kind), ' ',
    e.from ? `${e.from} → ${e.provider}` : e.provider,
    e.reason ? ` — ${e.reason}` : '',
    e.leastBad ? h('span', { class: 'pill warn' }, 'least bad') : null,
    e.stage ? ` (${e.stage}${e.code ? ' ' + e.code : ''})` : '',
    e.statuses && Object.keys(e.statuses).length
      ? h('span', { class: 'statuses' }, Object.entries(e.statuses).map(([n, st]) => [' ', n, ' ', badge(st)]))
      : null)));
}

/**
 * maintenanceRows builds the rows of the maintenance windows table: those not
 * over, and the ten most recent past ones. Admins can end a window that is
 * not over.
 */
export function maintenanceRows(windows, canWrite, end) {
  if (windows.length === 0) {
    return [h('tr', {}, h('td', { colSpan: 7, class: 'muted' }, 'No maintenance windows.'))];
  }
  return windows.map((w) => {
    const d = w.drainProgress;
    let drain = w.drain ? `${w.drainRate}/s` : 'no';
    if (d) drain += ` — ${d.moved} moved, ${d.remaining} left${d.late ? ' (late: streams were left at the start)' : ''}`;
    const over = w.state === 'past';
    return h('tr', { dataset: { window: w.id, state: w.state } },
      h('td', {}, w.provider),
      h('td', {}, h('span', { class: `pill ${w.state === 'active' ? 'warn' : ''}` }, w.state)),
      h('td', {}, h('time', { dateTime: w.start, title: exact(w.start) }, axisTime(w.start, false))),
      h('td', {}, h('time', { dateTime: w.endedAt || w.end, title: exact(w.endedAt || w.end) }, axisTime(w.endedAt || w.end, false))),
      h('td', {}, w.reason),
      h('td', { dataset: { stat: 'drain' } }, drain),
      h('td', {}, canWrite && !over
        ? h('button', { type: 'button', dataset: { action: 'end-window', focus: `window:${w.id}` }, onclick: (ev) => end(w, ev.currentTarget) },
          w.state === 'upcoming' ? 'Cancel' : 'End now')
        : ''));
  });
}

/** eventItems renders the recent events, newest first. */
export function eventItems(items) {
  if (items.length === 0) return [h('li', { class: 'muted' }, 'Nothing yet.')];
  return items.map((e) => h('li', { class: `event ${e.kind}` },
    h('time', { dateTime: e.at, title: exact(e.at) }, relative(e.at)), ' ',
    h('span', { class: 'pill' }, e.label), ' ',
    e.body));
}

/**
 * regionalItem describes a provider.regional event for the live event list:
 * which provider changed status in which region, from what to what, why and
 * who reported it. A region whose reports stopped reads "stale". It is a
 * warning unless the provider is usable there again.
 */
export function regionalItem(d, at) {
  const usable = ['EXCELLENT', 'HEALTHY', 'WARNING'].includes(d.to);
  return {
    at, kind: usable ? 'regional' : 'regional degrading', label: 'region',
    body: `${d.provider} in ${d.region}: ${d.from} → ${d.to}${d.reason ? ` (${d.reason})` : ''}${d.source ? `, reported by ${d.source}` : ''}`,
  };
}

/** describeAudit turns an audit entry into words. */
export function describeAudit(en) {
  const who = en.actor ? en.actor.name : 'someone';
  const what = {
    'provider.create': 'created provider', 'provider.update': 'updated provider', 'provider.delete': 'deleted provider',
    'provider.reorder': 'changed the failover order', 'token.create': 'created an API token', 'token.revoke': 'revoked API token',
    'maintenance.create': 'scheduled maintenance', 'maintenance.end': 'ended maintenance',
  }[en.action] || en.action;
  if (en.action.startsWith('maintenance.')) {
    const w = en.after || en.before || {};
    return `${who} ${what} of ${w.provider || en.target}${w.reason ? ` (${w.reason})` : ''}`;
  }
  return en.action === 'provider.reorder' ? `${who} ${what}` : `${who} ${what} ${en.target}`;
}

/**
 * regionMatrix builds the provider × region table of regional health: a row
 * per provider, in priority order, a column per region that any provider has
 * health in. A cell shows the status (or "stale", never the status it had),
 * the latency and the source of the last report, and says it in its title;
 * an empty cell means no probe from that region.
 */
export function regionMatrix(providers) {
  const regions = [...new Set(providers.flatMap((p) => Object.keys(p.regionalHealth || {})))].sort();
  const head = h('thead', {}, h('tr', {},
    h('th', { scope: 'col' }, 'Provider'),
    ...regions.map((r) => h('th', { scope: 'col' }, r))));
  const rows = providers.map((p) => h('tr', { dataset: { provider: p.name } },
    h('th', { scope: 'row' }, p.displayName || p.name),
    ...regions.map((r) => regionCell(p, r, (p.regionalHealth || {})[r]))));
  return { regions, nodes: [head, h('tbody', {}, ...rows)] };
}

function regionCell(p, region, rh) {
  if (!rh) return h('td', { class: 'muted', dataset: { region }, title: `No probe of ${p.name} from ${region}` }, '—');
  const word = rh.stale ? 'stale' : rh.status;
  const cls = rh.stale ? 'off' : (STATUS_CLASS[rh.status] || 'off');
  const quality = rh.quality == null ? '' : `, quality ${Math.round(rh.quality)}`;
  const title = `${p.name} in ${region}: ${rh.status}${rh.stale ? ' (stale)' : ''} — ${rh.reason}; from ${rh.source}${quality}`;
  return h('td', { dataset: { region, status: rh.status, stale: String(rh.stale) }, title },
    h('span', { class: `badge ${cls}` }, word),
    h('span', { class: 'muted region-detail' }, rh.stale || !rh.lastCheck ? '' : ` ${ms(rh.latency)}`));
}
