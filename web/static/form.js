// form.js: the add/edit provider dialog. Credentials are write-only: their
// inputs are never filled from the server, and only typed ones are sent.
import { $, h, show } from './dom.js';

export class ProviderForm {
  /**
   * @param {import('./api.js').Api} api
   * @param {(provider: object) => void} onSaved called with the saved provider
   */
  constructor(api, onSaved) {
    this.api = api;
    this.onSaved = onSaved;
    this.dialog = $('#provider-dialog');
    this.form = $('#provider-form');
    this.editing = null; // the provider being edited, or null when adding
    $('#pf-kind').addEventListener('change', () => this.applyKind());
    $('#pf-cancel').addEventListener('click', () => this.close());
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.save();
    });
    // Editing a field clears its error.
    this.form.addEventListener('input', (ev) => this.clearError(ev.target));
  }

  get isOpen() { return this.dialog.open; }

  /** open shows the dialog to add a provider (p null) or edit p. */
  open(p) {
    this.editing = p;
    this.form.reset();
    this.clearErrors();
    const f = this.form.elements;
    $('#provider-form-title').textContent = p ? `Edit ${p.displayName || p.name}` : 'Add provider';
    f.name.disabled = Boolean(p);
    f.kind.disabled = Boolean(p);
    $('#pf-credentials-set').hidden = !(p && p.credentialsSet);
    if (p) {
      f.name.value = p.name;
      f.displayName.value = p.displayName || '';
      f.kind.value = p.kind;
      f.enabled.checked = p.enabled;
      f.weight.value = p.weight;
      f.maxActiveStreams.value = p.maxActiveStreams;
      f.regions.value = (p.regions || []).join(', ');
      f.monthlyBudget.value = p.monthlyBudget;
      const c = p.config || {};
      f.appId.value = c.appId || '';
      f.baseUrl.value = c.baseUrl || '';
      f.url.value = c.url || '';
      f.method.value = c.method || 'GET';
      f.expectStatus.value = (c.expectStatus || []).join(', ');
      const hc = p.healthCheck || {};
      f.interval.value = hc.interval || '';
      f.timeout.value = hc.timeout || '';
      f.failureThreshold.value = hc.failureThreshold || '';
      f.successThreshold.value = hc.successThreshold || '';
    }
    for (const el of this.form.querySelectorAll('[data-secret]')) {
      el.value = '';
      el.placeholder = p && p.credentialsSet ? 'set — leave blank to keep (enter again if the URL or method changes)' : '';
    }
    this.applyKind();
    if (!this.dialog.open) this.dialog.showModal();
    (p ? f.displayName : f.name).focus();
  }

  /** reopen shows the dialog again with what was typed (after a new login). */
  reopen() {
    if (!this.dialog.open) this.dialog.showModal();
  }

  close() {
    this.dialog.close();
    this.editing = null;
  }

  /** applyKind shows only the fields of the selected kind. */
  applyKind() {
    const kind = this.form.elements.kind.value;
    // Document order: a fieldset comes before the kind-specific fields inside it.
    for (const el of this.form.querySelectorAll('[data-kinds]')) {
      const on = el.dataset.kinds.split(' ').includes(kind);
      el.hidden = !on;
      for (const input of el.querySelectorAll('input, select, textarea')) input.disabled = !on;
      if (el.matches('input, select, textarea')) el.disabled = !on;
    }
    if (this.editing) {
      this.form.elements.name.disabled = true;
      this.form.elements.kind.disabled = true;
    }
  }

  /** input builds the request body from the form. */
  input() {
    const f = this.form.elements;
    const p = this.editing;
    const kind = p ? p.kind : f.kind.value;
    const num = (el) => (el.value.trim() === '' ? undefined : Number(el.value));
    const str = (el) => el.value.trim();
    const body = {};
    if (!p) {
      body.name = str(f.name);
      body.kind = kind;
    }
    body.displayName = str(f.displayName) || undefined;
    body.enabled = f.enabled.checked;
    body.weight = num(f.weight);
    body.maxActiveStreams = num(f.maxActiveStreams);
    body.monthlyBudget = num(f.monthlyBudget);
    body.regions = str(f.regions) === '' ? [] : str(f.regions).split(',').map((x) => x.trim()).filter(Boolean);

    const config = {};
    if (kind === 'agora' || kind === 'zegocloud') {
      config.appId = str(f.appId);
      if (str(f.baseUrl)) config.baseUrl = str(f.baseUrl);
    } else {
      config.url = str(f.url);
      if (kind === 'http') {
        config.method = f.method.value;
        const codes = str(f.expectStatus);
        if (codes) {
          const list = codes.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
          if (list.some((n) => !Number.isInteger(n))) {
            throw Object.assign(new Error('must be HTTP status codes separated by commas'), { field: 'config.expectStatus' });
          }
          config.expectStatus = list;
        }
      }
    }
    body.config = config;

    const creds = {};
    for (const el of this.form.querySelectorAll('[data-secret]')) {
      if (el.disabled || el.value === '') continue;
      if (el.name === 'headers') {
        const headers = {};
        for (const line of el.value.split('\n')) {
          if (!line.trim()) continue;
          const i = line.indexOf(':');
          if (i <= 0) {
            throw Object.assign(new Error('write one "Name: value" a line'), { field: 'credentials.headers' });
          }
          headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
        }
        creds.headers = headers;
      } else {
        creds[el.name] = el.value;
      }
    }
    if (Object.keys(creds).length > 0) body.credentials = creds;

    const hc = {};
    if (str(f.interval)) hc.interval = str(f.interval);
    if (str(f.timeout)) hc.timeout = str(f.timeout);
    if (num(f.failureThreshold) !== undefined) hc.failureThreshold = num(f.failureThreshold);
    if (num(f.successThreshold) !== undefined) hc.successThreshold = num(f.successThreshold);
    if (Object.keys(hc).length > 0) body.healthCheck = hc;
    return body;
  }

  async save() {
    this.clearErrors();
    const btn = $('#pf-save');
    let body;
    try {
      body = this.input();
    } catch (err) {
      this.showError(err.field, err.message);
      return;
    }
    btn.disabled = true;
    try {
      const saved = this.editing ? await this.api.update(this.editing.name, body) : await this.api.create(body);
      // Typed secrets are not kept once they are stored.
      for (const el of this.form.querySelectorAll('[data-secret]')) el.value = '';
      this.close();
      this.onSaved(saved);
    } catch (err) {
      if (err.status === 401) return; // the login page takes over and keeps the form
      this.showError(err.field, err.message);
    } finally {
      btn.disabled = false;
    }
  }

  /** showError puts message next to the input of field, or under the form. */
  showError(field, message) {
    const input = field ? this.inputFor(field) : null;
    if (!input) {
      show($('#provider-form-error'), field ? `${field}: ${message}` : message);
      return;
    }
    const id = `${input.id}-error`;
    let p = document.getElementById(id);
    if (!p) {
      p = h('p', { class: 'field-error', id });
      input.closest('.field').append(p);
    }
    show(p, message);
    input.setAttribute('aria-invalid', 'true');
    const described = (input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    if (!described.includes(id)) input.setAttribute('aria-describedby', [...described, id].join(' '));
    input.focus();
  }

  /** inputFor finds the input named by an API error field such as "config.expectStatus[0]". */
  inputFor(field) {
    let f = field;
    while (f) {
      const el = this.form.querySelector(`[data-field="${CSS.escape(f)}"]`);
      if (el) return el;
      const cut = Math.max(f.lastIndexOf('['), f.lastIndexOf('.'));
      if (cut <= 0) break;
      f = f.slice(0, cut);
    }
    return null;
  }

  clearError(input) {
    if (!input || !input.id) return;
    const p = document.getElementById(`${input.id}-error`);
    if (p) show(p, '');
    input.removeAttribute('aria-invalid');
  }

  clearErrors() {
    for (const p of this.form.querySelectorAll('.field-error')) show(p, '');
    for (const el of this.form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    show($('#provider-form-error'), '');
  }
}
