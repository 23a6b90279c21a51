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
