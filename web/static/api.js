// api.js: the dashboard's only door to the server. Every request carries the
// session cookie (same origin) and, for writes, the session's CSRF token.

/** ApiError is a failed API call: the HTTP status and the error envelope. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || '';
  }
}

export class Api {
  constructor() {
    this.csrf = '';
    /** onUnauthorized is called when a request finds the session gone. */
    this.onUnauthorized = () => {};
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && this.csrf) headers['X-CSRF-Token'] = this.csrf;
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, 'network', 'The server cannot be reached.', '');
    }
    if (resp.status === 204) return null;
    let data = null;
    const text = await resp.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (err) {
        data = null;
      }
    }
    if (!resp.ok) {
      const e = (data && data.error) || {};
      const apiErr = new ApiError(resp.status, e.code || 'http_' + resp.status,
        e.message || `Request failed with status ${resp.status}.`, e.field);
      if (resp.status === 401 && !path.startsWith('/api/auth/login')) this.onUnauthorized(apiErr);
      throw apiErr;
    }
    return data;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body); }
  put(path, body) { return this.request('PUT', path, body); }
  del(path) { return this.request('DELETE', path); }

  async login(username, password) {
    const me = await this.post('/api/auth/login', { username, password });
    this.csrf = me.csrfToken || '';
    return me;
  }

  async me() {
    const me = await this.get('/api/auth/me');
    this.csrf = me.csrfToken || '';
    return me;
  }

  async logout() {
    try {
      await this.post('/api/auth/logout');
    } finally {
      this.csrf = '';
    }
  }

  providers() { return this.get('/api/streaming/providers'); }
  stats() { return this.get('/api/streaming/stats'); }
  activeStreams() { return this.get('/api/streams?status=active&limit=100'); }
  stream(id) { return this.get('/api/streams/' + encodeURIComponent(id)); }
  audit(limit = 30) { return this.get('/api/audit?limit=' + limit); }
  history(name, window) {
    return this.get(`/api/streaming/providers/${encodeURIComponent(name)}/history?window=${encodeURIComponent(window)}`);
  }
  check(name) { return this.post(`/api/streaming/providers/${encodeURIComponent(name)}/health-check`); }
  checkAll() { return this.post('/api/streaming/providers/health-check-all'); }
  update(name, input) { return this.put('/api/streaming/providers/' + encodeURIComponent(name), input); }
  create(input) { return this.post('/api/streaming/providers', input); }
  remove(name) { return this.del('/api/streaming/providers/' + encodeURIComponent(name)); }
  reorder(order) { return this.put('/api/streaming/providers/priorities', { order }); }
  maintenance() { return this.get('/api/maintenance?limit=50'); }
  scheduleMaintenance(input) { return this.post('/api/maintenance', input); }
  endMaintenance(id) { return this.post(`/api/maintenance/${encodeURIComponent(id)}/end`); }
}
