// format.js: numbers, money and times as the dashboard shows them.

export function percent(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return `${Number(v).toFixed(v === 100 || v === 0 ? 0 : 2)}%`;
}

export function ms(v) {
  if (v === null || v === undefined) return '—';
  return `${Math.round(v)} ms`;
}

export function money(v, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency || 'USD' }).format(v || 0);
  } catch (err) {
    return `${(v || 0).toFixed(2)} ${currency || ''}`.trim();
  }
}

/** exact is the full local date and time, for tooltips. */
export function exact(iso) {
  if (!iso) return 'never';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** relative is how long ago (or from now) iso is, in words. */
export function relative(iso, now = Date.now()) {
  if (!iso) return 'never';
  const diff = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(diff);
  if (abs < 5) return 'just now';
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  const units = [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  for (const [unit, secs] of units) {
    if (abs >= secs || unit === 'second') return rtf.format(Math.round(diff / secs), unit);
  }
  return '';
}

/** shortTime is a compact time of day (or date) for table cells and axes. */
export function shortTime(iso, withDate = false) {
  const d = new Date(iso);
  return withDate
    ? d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
    : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/** axisTime labels a chart's time axis: day and hour over a day, the day beyond. */
export function axisTime(t, days) {
  const d = new Date(t);
  return days
    ? d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
    : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** plural writes "1 failure" or "3 failures". */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
