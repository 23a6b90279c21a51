// dom.js: small helpers to build DOM nodes without HTML strings, so that no
// value from the server is ever parsed as markup.

/**
 * h creates an element. attrs sets properties (class, text, dataset, on*
 * handlers, hidden...) or attributes (names with a dash, aria-*, for).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** s creates an SVG element; every attribute is set as an attribute. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k.includes('-') || k === 'for' || k === 'role' || k === 'scope') el.setAttribute(k, v === true ? '' : String(v));
    else el[k] = v;
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** $ finds one element by selector. */
export const $ = (sel, root = document) => root.querySelector(sel);

/** show toggles an element's hidden flag and, when shown, sets its text. */
export function show(el, text) {
  if (text === undefined || text === null || text === '') {
    el.hidden = true;
    el.textContent = '';
  } else {
    el.textContent = text;
    el.hidden = false;
  }
}
