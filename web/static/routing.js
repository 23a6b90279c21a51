// routing.js: the Routing section: the policy that spreads new streams over
// the usable providers, its shares, weights and margin, and the per-region
// overrides. Admins see it; superadmins change it (PUT /api/routing, a
// partial update: what the form leaves alone is kept).
import { $, h, show } from './dom.js';

const POLICIES = ['priority', 'balanced', 'optimized', 'commit', 'cost'];
const WEIGHTS = ['quality', 'latency', 'health', 'cost'];

/** formatShares writes shares as name:share, name:share. */
export function formatShares(shares) {
  return Object.keys(shares || {}).sort().map((n) => `${n}:${shares[n]}`).join(', ');
}

/**
 * parseShares reads name:share pairs separated by commas or spaces; it
 * returns {shares} or {error}.
 */
export function parseShares(text) {
  const shares = {};
  for (const part of text.split(/[,\s]+/).filter(Boolean)) {
    const i = part.lastIndexOf(':');
    const name = part.slice(0, i);
    const v = Number(part.slice(i + 1));
    if (i <= 0 || part.slice(i + 1) === '' || !Number.isFinite(v)) return { error: `"${part}" is not name:share` };
    shares[name] = v;
  }
  return { shares };
}

/** startsText says how the starts of the last day were shared, per scope. */
export function startsText(starts) {
  const scopes = Object.keys(starts || {}).sort();
  if (!scopes.length) return '';
  return 'Starts over the last day: ' + scopes.map((scope) => {
    const byProv = starts[scope];
    const total = Object.values(byProv).reduce((a, b) => a + b, 0) || 1;
    const parts = Object.keys(byProv).sort().map((p) => `${p} ${(100 * byProv[p] / total).toFixed(1)} % (${byProv[p]})`);
    return `${scope || 'global'}: ${parts.join(', ')}`;
  }).join('; ') + '.';
}

export class RoutingPanel {
  constructor(api) {
    this.api = api;
    this.config = null;
    this.error = '';
    this.canWrite = false;
    this.filled = false; // the form holds the configuration (not refilled while edited)
    this.bound = false;
  }

  /** load reads the configuration; it never throws but for a lost session. */
  async load() {
    try {
      this.config = await this.api.get('/api/routing');
      this.error = '';
    } catch (err) {
      if (err.status === 401) throw err;
      this.error = `Routing could not be read: ${err.message}`;
    }
  }

  render(role) {
    this.canWrite = role === 'superadmin';
    this.bind();
    show($('#routing-error'), this.error);
    const c = this.config;
    if (!c) return;
    $('#routing-current').textContent = this.summary(c);
    show($('#routing-starts'), startsText(c.starts));
    $('#routing-regions tbody').replaceChildren(...Object.keys(c.regions || {}).sort().map((r) => {
      const o = c.regions[r];
      return h('tr', { dataset: { region: r } },
        h('td', { text: r }),
        h('td', { dataset: { stat: 'policy' }, text: o.policy }),
        h('td', { text: o.shares && Object.keys(o.shares).length ? formatShares(o.shares) : '(global)' }),
        h('td', { text: o.margin !== undefined && o.margin !== null ? String(o.margin) : '(global)' }),
        h('td', {}, this.canWrite ? h('button', { type: 'button', dataset: { action: 'remove-region' },
          'aria-label': `Remove the override of ${r}`, text: 'Remove', onclick: () => this.save({ regions: { [r]: null } }, `Override of ${r} removed.`) }) : '—'),
      );
    }));
    $('#routing-regions-empty').hidden = Object.keys(c.regions || {}).length > 0;
    for (const el of document.querySelectorAll('#routing-form input, #routing-form select, #routing-form button, #routing-region-form input, #routing-region-form select, #routing-region-form button')) {
      el.disabled = !this.canWrite;
    }
    $('#routing-readonly').hidden = this.canWrite;
    if (!this.filled) this.fill(c);
  }

  summary(c) {
    let s = `Policy ${c.policy}`;
    if (c.policy === 'commit') s += ` holding ${formatShares(c.shares)}`;
    if (c.policy === 'optimized') s += ` (weights ${WEIGHTS.map((w) => `${w} ${c.weights[w]}`).join(', ')}; margin ${c.margin})`;
    const n = Object.keys(c.regions || {}).length;
    if (n) s += `; ${n} region override${n > 1 ? 's' : ''}`;
    return s + '.';
  }

  fill(c) {
    $('#rf-policy').value = c.policy;
    $('#rf-shares').value = formatShares(c.shares);
    $('#rf-margin').value = String(c.margin);
    for (const w of WEIGHTS) $('#rf-w-' + w).value = String(c.weights[w]);
    this.filled = true;
  }

  bind() {
    if (this.bound) return;
    this.bound = true;
    const sel = $('#rf-policy');
    const rsel = $('#rrf-policy');
    if (!sel.options.length) {
      for (const p of POLICIES) {
        sel.append(h('option', { value: p, text: p }));
        rsel.append(h('option', { value: p, text: p }));
      }
    }
    $('#routing-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    });
    $('#routing-region-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const region = $('#rrf-region').value.trim();
      if (!region) {
        this.fieldError('region', 'Name the region, such as eu-west.');
        return;
      }
      this.save({ regions: { [region]: { policy: rsel.value } } }, `Override of ${region} saved.`);
    });
  }

  clearErrors() {
    for (const el of document.querySelectorAll('#routing [data-error-for]')) show(el, '');
  }

  /** fieldError shows msg beside the field the API named, else above the form. */
  fieldError(field, msg) {
    let key = field;
    if (field.startsWith('shares')) key = 'shares';
    else if (field.startsWith('weights')) key = 'weights';
    else if (field.startsWith('regions')) key = 'region';
    const el = document.querySelector(`#routing [data-error-for="${key}"]`);
    if (el) show(el, msg);
    else show($('#routing-error'), msg);
  }

  submit() {
    this.clearErrors();
    const body = { policy: $('#rf-policy').value };
    const sh = parseShares($('#rf-shares').value);
    if (sh.error) {
      this.fieldError('shares', sh.error);
      return;
    }
    body.shares = sh.shares;
    body.margin = Number($('#rf-margin').value);
    body.weights = {};
    for (const w of WEIGHTS) body.weights[w] = Number($('#rf-w-' + w).value);
    this.save(body, 'Routing saved.');
  }

  async save(body, done) {
    this.clearErrors();
    show($('#routing-status'), '');
    try {
      this.config = await this.api.put('/api/routing', body);
      this.filled = false;
      this.error = '';
      this.render(this.canWrite ? 'superadmin' : '');
      show($('#routing-status'), done);
    } catch (err) {
      if (err.status === 401) return;
      this.fieldError(err.field || '', err.field ? `${err.field}: ${err.message}` : err.message);
    }
  }
}
