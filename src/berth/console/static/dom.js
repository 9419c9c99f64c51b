// Small DOM helpers the console's views share: build elements, tables and definition lists
// from data (text only: nothing is ever parsed as HTML), and read the page's hash route.

export const $ = (id) => document.getElementById(id);

/** el('td', {className: 'x', dataset: {arn}}, 'text', child, ...) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  node.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

export function button(text, onclick, props = {}) {
  return el('button', { type: 'button', onclick, ...props }, text);
}

/** A table: columns [{title, cell: (row) => Node|string}], one <tr data-key> per row. */
export function table(columns, rows, key = () => '') {
  return el('table', { className: 'grid' },
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', {}, c.title)))),
    el('tbody', {}, rows.length ? rows.map((row) => el('tr', { dataset: { key: key(row) } },
      columns.map((c) => el('td', {}, c.cell(row) ?? '')))) :
      el('tr', {}, el('td', { colSpan: columns.length, className: 'hint' }, 'None.'))));
}

/** A definition list from [label, value] pairs (values that are null are left out). */
export function facts(pairs) {
  return el('dl', { className: 'facts' },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
      .flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

/** The last path segment of an ARN or path (task id, instance id, ...). */
export const tail = (arn) => String(arn ?? '').split('/').pop();

export function when(value) {
  if (value === null || value === undefined || value === '') return '';
  const ms = typeof value === 'number' ? (value > 1e11 ? value : value * 1000) : Date.parse(value);
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** The hash route: `#view=cluster&cluster=default` as a URLSearchParams. */
export const route = () => new URLSearchParams(location.hash.slice(1));

export function go(params) {
  const hash = `#${new URLSearchParams(params)}`;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

export function describe(err) {
  return err?.code ? err.message : String(err?.message ?? err);
}
