// accounts.js: the dashboard's accounts: the change of one's own password
// (forced after a login with a temporary password), the users page of
// superadmins, and the single sign-on button of the login page.
import { $, h, show } from './dom.js';
import { relative } from './format.js';

export class Accounts {
  /**
   * @param api the Api
   * @param onPasswordChanged called with the new identity once the password
   *   changed (the server started a new session)
   * @param onCancel called when a voluntary password change is cancelled
   */
  constructor(api, onPasswordChanged, onCancel) {
    this.api = api;
    this.onPasswordChanged = onPasswordChanged;
    this.onCancel = onCancel;
    this.me = null;
    this.users = [];
    this.armed = ''; // the username whose Delete asks for confirmation
    $('#password-form').addEventListener('submit', (ev) => this.onChangePassword(ev));
    $('#password-cancel').addEventListener('click', () => this.onCancel());
    $('#user-form').addEventListener('submit', (ev) => this.onAddUser(ev));
    $('#users-refresh').addEventListener('click', () => this.loadUsers());
    $('#reset-form').addEventListener('submit', (ev) => this.onReset(ev));
    $('#reset-cancel').addEventListener('click', () => $('#reset-dialog').close());
  }

  /** showSSO shows the single sign-on button when the server has it. */
  async showSSO() {
    try {
      const m = await this.api.get('/api/auth/methods');
      if (m && m.sso && m.sso.enabled) {
        $('#sso-login').href = m.sso.loginUrl;
        $('#sso').hidden = false;
      }
    } catch (err) {
      // Without the answer, the password login stays the only one shown.
    }
  }

  /** askPassword shows the password form: forced (no way out) or not. */
  askPassword(me, forced) {
    this.me = me;
    const f = $('#password-form');
    f.reset();
    for (const p of f.querySelectorAll('.field-error')) show(p, '');
    show($('#password-error'), '');
    show($('#password-reason'), forced
      ? 'Your password is temporary: choose your own before using the dashboard.' : '');
    $('#password-cancel').hidden = forced;
    $('#login-view').hidden = true;
    $('#dashboard').hidden = true;
    $('#password-view').hidden = false;
    $('#password-current').focus();
  }

  hidePassword() { $('#password-view').hidden = true; }

  async onChangePassword(ev) {
    ev.preventDefault();
    const f = ev.target.elements;
    for (const p of ev.target.querySelectorAll('.field-error')) show(p, '');
    show($('#password-error'), '');
    if (f.newPassword.value !== f.confirmPassword.value) {
      show($('#password-confirm-error'), 'The two new passwords differ.');
      f.confirmPassword.focus();
      return;
    }
    const btn = ev.target.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const me = await this.api.put('/api/auth/password',
        { currentPassword: f.currentPassword.value, newPassword: f.newPassword.value });
      this.api.csrf = me.csrfToken || '';
      ev.target.reset();
      this.hidePassword();
      this.onPasswordChanged(me);
    } catch (err) {
      const fieldErr = err.field && ev.target.querySelector(`[data-error-for="${CSS.escape(err.field)}"]`);
      if (fieldErr) show(fieldErr, err.message);
      else show($('#password-error'), err.message);
    } finally {
      btn.disabled = false;
    }
  }

  // ---- Users (superadmin) ------------------------------------------------

  async loadUsers() {
    if (!this.me || this.me.role !== 'superadmin') return;
    try {
      const l = await this.api.get('/api/users');
      this.users = l.users || [];
      show($('#users-error'), '');
    } catch (err) {
      show($('#users-error'), err.message);
    }
    this.renderUsers();
  }

  enter(me) {
    this.me = me;
    if (me.role === 'superadmin') this.loadUsers();
  }

  renderUsers() {
    const rows = this.users.map((u) => {
      const self = this.me && u.username === this.me.name;
      const role = h('select', { 'aria-label': `Role of ${u.username}`, name: 'role', dataset: { user: u.username },
        onchange: (ev) => this.update(u.username, { role: ev.target.value }) },
      h('option', { value: 'admin', text: 'admin', selected: u.role === 'admin' }),
      h('option', { value: 'superadmin', text: 'superadmin', selected: u.role === 'superadmin' }));
      const actions = [
        h('button', { type: 'button', dataset: { action: u.enabled ? 'disable' : 'enable', user: u.username },
          text: u.enabled ? 'Disable' : 'Enable', disabled: self,
          onclick: () => this.update(u.username, { enabled: !u.enabled }) }),
      ];
      if (!u.sso) {
        actions.push(h('button', { type: 'button', dataset: { action: 'reset', user: u.username },
          text: 'Set temporary password', onclick: () => this.askReset(u.username) }));
      }
      const armed = this.armed === u.username;
      actions.push(h('button', { type: 'button', class: armed ? 'danger' : '', dataset: { action: 'delete', user: u.username },
        text: armed ? 'Confirm delete' : 'Delete', disabled: self, onclick: () => this.remove(u.username) }));
      const state = [u.enabled ? 'enabled' : 'disabled'];
      if (u.mustChangePassword) state.push('must change password');
      return h('tr', { dataset: { user: u.username } },
        h('td', { text: u.username }),
        h('td', {}, role),
        h('td', { text: state.join(', ') }),
        h('td', { text: u.sso ? 'single sign-on' : 'password' }),
        h('td', { text: u.lastLoginAt ? relative(u.lastLoginAt) : 'never' }),
        h('td', { class: 'row-actions' }, actions));
    });
    $('#users tbody').replaceChildren(...rows);
  }

  async update(username, change) {
    this.armed = '';
    show($('#users-error'), '');
    try {
      await this.api.put('/api/users/' + encodeURIComponent(username), change);
      show($('#users-status'), `Saved ${username}.`);
    } catch (err) {
      show($('#users-error'), `${username}: ${err.message}`);
    }
    await this.loadUsers();
  }

  async remove(username) {
    if (this.armed !== username) {
      this.armed = username;
      this.renderUsers();
      return;
    }
    this.armed = '';
    show($('#users-error'), '');
    try {
      await this.api.del('/api/users/' + encodeURIComponent(username));
      show($('#users-status'), `Deleted ${username}.`);
    } catch (err) {
      show($('#users-error'), `${username}: ${err.message}`);
    }
    await this.loadUsers();
  }

  async onAddUser(ev) {
    ev.preventDefault();
    const f = ev.target.elements;
    for (const p of ev.target.querySelectorAll('.field-error')) show(p, '');
    show($('#user-form-error'), '');
    try {
      await this.api.post('/api/users',
        { username: f.username.value.trim(), role: f.role.value, password: f.password.value });
      show($('#users-status'), `Added ${f.username.value.trim()}: give them the temporary password, to change at their first login.`);
      ev.target.reset();
      await this.loadUsers();
    } catch (err) {
      const fieldErr = err.field && ev.target.querySelector(`[data-error-for="${CSS.escape(err.field)}"]`);
      if (fieldErr) show(fieldErr, err.message);
      else show($('#user-form-error'), err.message);
    }
  }

  askReset(username) {
    const f = $('#reset-form');
    f.reset();
    f.elements.username.value = username;
    $('#reset-title').textContent = `Temporary password for ${username}`;
    show($('#reset-error'), '');
    $('#reset-dialog').showModal();
  }

  async onReset(ev) {
    ev.preventDefault();
    const f = ev.target.elements;
    const username = f.username.value;
    try {
      await this.api.put('/api/users/' + encodeURIComponent(username), { password: f.password.value });
      $('#reset-dialog').close();
      show($('#users-status'), `${username} has a new temporary password; their sessions have ended.`);
      await this.loadUsers();
    } catch (err) {
      show($('#reset-error'), err.message);
    }
  }
}
