// reports.js: the Reports section: the SLA report of a month, the cost report
// and the quality report of a period, each as a bar chart and a table, with
// a link to the same report as CSV. Reports are read when asked for, not on
// every refresh: over a year of streams one can take seconds.
import { $, h, show } from './dom.js';
import { barChart } from './charts.js';
import { exact, money, percent } from './format.js';

const GROUPS = {
  sla: [],
  cost: ['provider', 'region', 'quality', 'day'],
  quality: ['provider', 'region'],
};

function num(v, places = 2) {
  return v === null || v === undefined ? '—' : Number(v).toFixed(places);
}

function minutes(v) {
  return v === null || v === undefined ? '—' : `${Number(v).toFixed(1)} min`;
}

function change(v) {
  if (v === null || v === undefined) return '—';
  return `${v > 0 ? '+' : ''}${Number(v).toFixed(1)}%`;
}

function keyLabel(k) {
  return k === '' ? '(none)' : k;
}

function table(caption, head, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'report-table' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', {}, c))))))));
}

/** utcDate is the YYYY-MM-DD of a date, in UTC. */
function utcDate(d) {
  return d.toISOString().slice(0, 10);
}

export class ReportsPanel {
  constructor(api) {
    this.api = api;
    this.busy = false;
  }

  /** init sets the form's defaults and listens to it; call it once. */
  init() {
    const form = $('#report-form');
    if (!form) return;
    const now = new Date();
    $('#report-month').value = now.toISOString().slice(0, 7);
    $('#report-from').value = utcDate(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)));
    $('#report-to').value = '';
    $('#report-kind').addEventListener('change', () => this.fields());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.load();
    });
    this.fields();
  }

  /** fields shows the inputs the chosen report takes. */
  fields() {
    const kind = $('#report-kind').value;
    $('#report-month-field').hidden = kind !== 'sla';
    $('#report-from-field').hidden = kind === 'sla';
    $('#report-to-field').hidden = kind === 'sla';
    $('#report-group-field').hidden = kind === 'sla';
    const sel = $('#report-group');
    const prev = sel.value;
    sel.replaceChildren(...GROUPS[kind].map((g) => h('option', { value: g }, g)));
    if (GROUPS[kind].includes(prev)) sel.value = prev;
  }

  /** query is the report's path and query string from the form. */
  query() {
    const kind = $('#report-kind').value;
    const q = new URLSearchParams();
    if (kind === 'sla') {
      if ($('#report-month').value) q.set('month', $('#report-month').value);
    } else {
      if ($('#report-from').value) q.set('from', $('#report-from').value);
      if ($('#report-to').value) q.set('to', $('#report-to').value);
      q.set('groupBy', $('#report-group').value);
    }
    return { kind, path: `/api/reports/${kind}`, q };
  }

  async load() {
    if (this.busy) return;
    const { kind, path, q } = this.query();
    const out = $('#report-output');
    const status = $('#report-status');
    const link = $('#report-csv');
    show($('#report-error'), '');
    this.busy = true;
    show(status, 'Loading…');
    try {
      const rep = await this.api.get(`${path}?${q}`);
      const csv = new URLSearchParams(q);
      csv.set('format', 'csv');
      link.href = `${path}?${csv}`;
      link.hidden = false;
      out.replaceChildren(...this.render(kind, rep));
      show(status, `Report of ${exact(rep.from)} to ${exact(rep.to)}`);
    } catch (err) {
      out.replaceChildren();
      link.hidden = true;
      show(status, '');
      if (err.status === 401) return;
      show($('#report-error'), err.field ? `${err.field}: ${err.message}` : err.message);
    } finally {
      this.busy = false;
    }
  }

  render(kind, rep) {
    if (kind === 'sla') return this.sla(rep);
    if (kind === 'cost') return this.cost(rep);
    return this.quality(rep);
  }

  sla(rep) {
    const ps = rep.providers;
    const chart = barChart({
      title: `Uptime per provider, ${rep.month}`, categories: ps.map((p) => p.provider), yMax: 100,
      series: [{ name: 'uptime', cls: 'uptime', values: ps.map((p) => p.uptimePercent) }], format: (v) => `${num(v, v === 100 || v === 0 ? 0 : 2)}%`,
    });
    const summary = table('SLA per provider', ['Provider', 'Uptime', 'Incidents', 'Time critical', 'MTTR', 'Failovers out',
      'Streams affected', 'Degradations predicted', 'Incidents predicted', 'Median lead'],
    ps.map((p) => [p.provider, percent(p.uptimePercent), String(p.incidents.length), minutes(p.criticalMinutes),
      minutes(p.mttrMinutes), String(p.failoversOut), String(p.streamsAffected), String(p.degradationsPredicted),
      `${p.predictedIncidents} of ${p.incidents.length}`, p.medianLeadSeconds === null ? '—' : `${Math.round(p.medianLeadSeconds)} s`]));
    const incidents = ps.flatMap((p) => p.incidents.map((i) => [p.provider, exact(i.start), i.end ? exact(i.end) : 'ongoing',
      minutes(i.minutes), i.cause, String(i.streamsAffected), i.leadSeconds === null ? 'not predicted' : `${Math.round(i.leadSeconds)} s ahead`]));
    return [chart, summary, h('h3', {}, 'Incidents'),
      incidents.length ? table('Incidents', ['Provider', 'Start', 'End', 'Minutes', 'Cause', 'Streams affected', 'Prediction'], incidents)
        : h('p', { class: 'muted' }, 'No incident this month.')];
  }

  cost(rep) {
    const gs = rep.groups;
    const cur = rep.currency === 'mixed' ? '' : rep.currency;
    const m = (v) => (cur ? money(v, cur) : num(v));
    const chart = barChart({
      title: `Cost by ${rep.groupBy}, against the previous period`, categories: gs.map((g) => keyLabel(g.key)),
      series: [{ name: 'this period', cls: 'cost', values: gs.map((g) => g.cost) },
        { name: rep.groupBy === 'day' ? 'one period earlier' : 'previous period', cls: 'previous', values: gs.map((g) => g.previous.cost) }],
      format: (v) => m(v),
    });
    const rows = gs.map((g) => [keyLabel(g.key), num(g.minutes, 0), String(g.streams), m(g.cost), num(g.costPerStream, 4),
      num(g.costPerStreamHour, 4), m(g.previous.cost), change(g.costChangePercent)]);
    const t = rep.total;
    const p = rep.previous.total;
    rows.push(['Total', num(t.minutes, 0), String(t.streams), m(t.cost), num(t.costPerStream, 4), num(t.costPerStreamHour, 4),
      m(p.cost), change(p.cost ? ((t.cost - p.cost) / p.cost) * 100 : null)]);
    return [chart, table(`Cost by ${rep.groupBy}`, [rep.groupBy, 'Minutes', 'Streams', 'Cost', 'Per stream', 'Per stream-hour',
      'Previous period', 'Change'], rows),
    h('p', { class: 'muted' }, `Previous period: ${exact(rep.previous.from)} to ${exact(rep.previous.to)}.`)];
  }

  quality(rep) {
    const gs = rep.groups;
    const chart = barChart({
      title: `Estimated MOS by ${rep.groupBy}`, categories: gs.map((g) => keyLabel(g.key)), yMax: 5,
      series: [{ name: 'MOS', cls: 'mos', values: gs.map((g) => g.mos) }], format: (v) => num(v, 1),
    });
    const line = (k, f) => [k, String(f.samples), String(f.streams), num(f.score, 1), num(f.mos, 2), num(f.rFactor, 1),
      `${num(f.rttMs.p50, 0)} / ${num(f.rttMs.p95, 0)} ms`, `${num(f.packetLoss.p50 * 100)} / ${num(f.packetLoss.p95 * 100)}%`,
      `${num(f.jitterMs.p50, 0)} / ${num(f.jitterMs.p95, 0)} ms`, percent(f.freezeRatio * 100)];
    const rows = gs.map((g) => line(keyLabel(g.key), g));
    rows.push(line('Total', rep.total));
    return [chart, table(`Quality by ${rep.groupBy}`, [rep.groupBy, 'Samples', 'Streams', 'Score', 'MOS', 'R factor',
      'RTT p50 / p95', 'Loss p50 / p95', 'Jitter p50 / p95', 'Frozen'], rows)];
  }
}
