// alerts.js: the Alerts section: channels (with a test send each), rules
// and the latest delivery attempts. Channels and rules are changed through
// the API or the CLI; this view shows them and what was delivered.
import { $, h, show } from './dom.js';
import { exact, shortTime } from './format.js';

const DELIVERIES = 20;

/** target is where a channel sends, without its secrets. */
function target(c) {
  const cf = c.config || {};
  switch (c.kind) {
    case 'webhook': return cf.url || '';
    case 'email':
    case 'sms': return (cf.to || []).join(', ');
    case 'pagerduty': return cf.baseUrl || 'PagerDuty Events API';
    default: return 'incoming webhook';
  }
}

function duration(d) {
  return !d || d === '0s' ? 'none' : d;
}

export class AlertsPanel {
  constructor(api) {
    this.api = api;
    this.channels = [];
    this.rules = [];
    this.attempts = [];
    this.tests = new Map(); // channel name -> {busy} | {outcome, text}
    this.error = '';
  }

  /** load reads channels, rules and the latest attempts; it never throws. */
  async load() {
    try {
      const [ch, ru, de] = await Promise.all([
        this.api.get('/api/alerts/channels'),
        this.api.get('/api/alerts/rules'),
        this.api.get('/api/alerts/deliveries?limit=' + DELIVERIES),
      ]);
      this.channels = ch.channels || [];
      this.rules = ru.rules || [];
      this.attempts = de.attempts || [];
      this.error = '';
    } catch (err) {
      if (err.status === 401) throw err;
      this.error = `Alerts could not be read: ${err.message}`;
    }
  }

  render() {
    show($('#alerts-error'), this.error);
    $('#alert-channels tbody').replaceChildren(...this.channels.map((c) => this.channelRow(c)));
    $('#alert-channels-empty').hidden = this.channels.length > 0;
    $('#alert-rules tbody').replaceChildren(...this.rules.map((r) => h('tr', { dataset: { rule: r.name } },
      h('td', { text: r.name }),
      h('td', { text: r.enabled ? 'yes' : 'no' }),
      h('td', { text: (r.events || []).join(', ') }),
      h('td', { text: (r.channels || []).join(', ') }),
      h('td', { text: (r.providers || []).length ? r.providers.join(', ') : 'all' }),
      h('td', { text: duration(r.repeatInterval) }),
      h('td', { text: r.minSeverity }),
    )));
    $('#alert-rules-empty').hidden = this.rules.length > 0;
    $('#alert-deliveries tbody').replaceChildren(...this.attempts.map((a) => h('tr', { dataset: { attempt: String(a.id) } },
      h('td', { title: exact(a.at), text: shortTime(a.at) }),
      h('td', { text: a.channel }),
      h('td', { text: a.rule || '—' }),
      h('td', { text: a.incidentId ? String(a.incidentId) : '—' }),
      h('td', { text: a.transition }),
      h('td', {}, h('span', { class: 'pill outcome-' + a.outcome, dataset: { stat: 'outcome' }, text: a.outcome })),
      h('td', { text: a.httpStatus ? String(a.httpStatus) : '—' }),
      h('td', { class: 'wrap', text: a.error || '' }),
    )));
    $('#alert-deliveries-empty').hidden = this.attempts.length > 0;
  }

  channelRow(c) {
    const t = this.tests.get(c.name) || {};
    const result = h('span', { class: 'test-result', role: 'status', dataset: { stat: 'test' },
      text: t.busy ? 'sending…' : (t.text || '') });
    if (t.outcome) result.classList.add('outcome-' + t.outcome);
    return h('tr', { dataset: { channel: c.name } },
      h('td', { text: c.name }),
      h('td', { text: c.kind }),
      h('td', { class: 'wrap', text: target(c) }),
      h('td', { text: (c.secretsSet || []).join(', ') || '—' }),
      h('td', {},
        h('button', { type: 'button', disabled: !!t.busy, dataset: { action: 'test', focus: 'test:' + c.name },
          'aria-label': `Send a test notification to ${c.name}`, text: 'Test', onclick: () => this.test(c.name) }),
        ' ', result),
    );
  }

  /** test sends a test notification and shows its outcome, then the new attempt. */
  async test(name) {
    this.tests.set(name, { busy: true });
    this.render();
    try {
      const res = await this.api.post(`/api/alerts/channels/${encodeURIComponent(name)}/test`);
      const a = res.attempt || {};
      this.tests.set(name, a.outcome === 'sent'
        ? { outcome: 'sent', text: `sent (${a.durationMs} ms)` }
        : { outcome: 'failed', text: `failed: ${a.error || a.httpStatus || 'no answer'}` });
    } catch (err) {
      if (err.status === 401) return;
      this.tests.set(name, { outcome: 'failed', text: `failed: ${err.message}` });
    }
    await this.load().catch(() => {});
    this.render();
  }
}
