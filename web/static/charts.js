// charts.js: line charts of a provider's history, drawn as inline SVG.
import { s } from './dom.js';
import { axisTime } from './format.js';

const W = 320;
const H = 130;
const PAD = { top: 10, right: 8, bottom: 22, left: 38 };

/**
 * lineChart draws series of points over time.
 * opts: {title, series: [{name, cls, points: [{at, value}]}], yMax, unit, days}
 * It returns an <svg> with a <title> and a <desc> summarising the data, so
 * the chart has a text equivalent.
 */
export function lineChart(opts) {
  const all = opts.series.flatMap((x) => x.points);
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': opts.title,
  });
  svg.append(s('title', {}, opts.title));
  if (all.length === 0) {
    svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'No checks in this window'));
    return svg;
  }
  const xs = all.map((p) => new Date(p.at).getTime());
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) { x0 -= 3600e3; x1 += 3600e3; }
  const yMax = opts.yMax ?? niceMax(Math.max(1, ...all.map((p) => p.value)));
  const px = (t) => PAD.left + ((t - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (v) => PAD.top + (1 - Math.min(v, yMax) / yMax) * (H - PAD.top - PAD.bottom);

  // Grid and axes.
  for (const f of [0, 0.5, 1]) {
    const v = yMax * f;
    svg.append(
      s('line', { x1: PAD.left, x2: W - PAD.right, y1: py(v), y2: py(v), class: 'grid' }),
      s('text', { x: PAD.left - 4, y: py(v) + 3, 'text-anchor': 'end', class: 'axis' }, `${fmt(v)}${opts.unit}`),
    );
  }
  svg.append(
    s('text', { x: PAD.left, y: H - 6, class: 'axis' }, axisTime(x0, opts.days)),
    s('text', { x: W - PAD.right, y: H - 6, 'text-anchor': 'end', class: 'axis' }, axisTime(x1, opts.days)),
  );

  const summary = [];
  for (const series of opts.series) {
    if (series.points.length === 0) continue;
    const pts = series.points.map((p) => `${px(new Date(p.at).getTime()).toFixed(1)},${py(p.value).toFixed(1)}`);
    svg.append(s('polyline', { points: pts.join(' '), class: `line ${series.cls}` }));
    for (const p of series.points) {
      svg.append(s('circle', { cx: px(new Date(p.at).getTime()), cy: py(p.value), r: 2, class: `dot ${series.cls}` },
        s('title', {}, `${series.name} ${fmt(p.value)}${opts.unit} at ${new Date(p.at).toLocaleString()}`)));
    }
    const vals = series.points.map((p) => p.value);
    summary.push(`${series.name}: min ${fmt(Math.min(...vals))}${opts.unit}, max ${fmt(Math.max(...vals))}${opts.unit}`);
  }
  svg.append(s('desc', {}, summary.join('; ')));
  return svg;
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 1 : 0);
}

const BW = 480;
const BH = 200;
const BPAD = { top: 12, right: 8, bottom: 40, left: 56 };

/**
 * barChart draws one or two bars per category.
 * opts: {title, categories: [label], series: [{name, cls, values: [number]}], unit, format}
 * Like lineChart it carries a <title> and a <desc> with every value, and
 * each bar has a tooltip.
 */
export function barChart(opts) {
  const svg = s('svg', { viewBox: `0 0 ${BW} ${BH}`, class: 'chart bars', role: 'img', 'aria-label': opts.title });
  svg.append(s('title', {}, opts.title));
  const cats = opts.categories;
  const format = opts.format || ((v) => `${fmt(v)}${opts.unit || ''}`);
  if (cats.length === 0) {
    svg.append(s('text', { x: BW / 2, y: BH / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'Nothing in this period'));
    return svg;
  }
  const all = opts.series.flatMap((x) => x.values).filter((v) => v !== null && v !== undefined);
  const yMax = opts.yMax ?? niceMax(Math.max(1e-9, ...all));
  const plotW = BW - BPAD.left - BPAD.right;
  const plotH = BH - BPAD.top - BPAD.bottom;
  const py = (v) => BPAD.top + (1 - Math.min(v, yMax) / yMax) * plotH;
  for (const f of [0, 0.5, 1]) {
    const v = yMax * f;
    svg.append(
      s('line', { x1: BPAD.left, x2: BW - BPAD.right, y1: py(v), y2: py(v), class: 'grid' }),
      s('text', { x: BPAD.left - 4, y: py(v) + 3, 'text-anchor': 'end', class: 'axis' }, format(v)),
    );
  }
  const slot = plotW / cats.length;
  const n = opts.series.length;
  const bw = Math.max(1, Math.min(28, (slot * 0.8) / n));
  const labelEvery = Math.ceil(cats.length / 12);
  const summary = [];
  cats.forEach((cat, i) => {
    const x0 = BPAD.left + slot * i + (slot - bw * n) / 2;
    const parts = [];
    opts.series.forEach((series, j) => {
      const v = series.values[i];
      if (v === null || v === undefined) return;
      const y = py(v);
      svg.append(s('rect', { x: (x0 + j * bw).toFixed(1), y: y.toFixed(1), width: bw.toFixed(1),
        height: Math.max(0, BPAD.top + plotH - y).toFixed(1), class: `bar ${series.cls}` },
      s('title', {}, `${cat}: ${series.name} ${format(v)}`)));
      parts.push(`${series.name} ${format(v)}`);
    });
    if (i % labelEvery === 0) {
      svg.append(s('text', { x: (BPAD.left + slot * (i + 0.5)).toFixed(1), y: BH - BPAD.bottom + 12, 'text-anchor': 'middle', class: 'axis' },
        cat.length > 12 ? `${cat.slice(0, 11)}…` : cat));
    }
    summary.push(`${cat}: ${parts.join(', ')}`);
  });
  svg.append(s('desc', {}, summary.join('; ')));
  return svg;
}
