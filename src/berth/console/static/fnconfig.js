// A function's configuration under its editor: environment, memory and timeout (saved with
// UpdateFunctionConfiguration), its published versions and its aliases.
import { $, describe, el, table, when } from './dom.js';

let client = null;
let current = null;      // the function shown

function status(text, kind = '') {
  $('config-status').textContent = text;
  $('config-status').className = kind;
}

/** "KEY=value" lines, as the environment textarea holds them. */
export function parseEnvironment(text) {
  const variables = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 1) throw new Error(`line ${i + 1}: expected KEY=value`);
    variables[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return variables;
}

const formatEnvironment = (variables) => Object.entries(variables ?? {})
  .map(([k, v]) => `${k}=${v}`).join('\n');

export function hideConfig() {
  current = null;
  $('fn-config').hidden = true;
}

export async function showConfig(signedIn, name) {
  client = signedIn;
  current = name;
  $('fn-config').hidden = false;
  status('');
  try {
    const config = await client.getFunction(name).then((fn) => fn.Configuration);
    if (current !== name) return;
    $('cfg-memory').value = config.MemorySize;
    $('cfg-timeout').value = config.Timeout;
    $('cfg-env').value = formatEnvironment(config.Environment?.Variables);
    await renderVersions(name);
  } catch (err) {
    status(describe(err), 'error');
  }
}

async function renderVersions(name) {
  const [versions, aliases] = await Promise.all([client.listVersions(name), client.listAliases(name)]);
  if (current !== name) return;
  $('cfg-versions').replaceChildren(table([
    { title: 'Version', cell: (v) => v.Version },
    { title: 'Description', cell: (v) => v.Description ?? '' },
    { title: 'Memory', cell: (v) => `${v.MemorySize} MB` },
    { title: 'Timeout', cell: (v) => `${v.Timeout} s` },
    { title: 'Code', cell: (v) => el('small', { className: 'mono' }, (v.CodeSha256 ?? '').slice(0, 12)) },
    { title: 'Modified', cell: (v) => when(v.LastModified) },
  ], versions, (v) => v.Version));
  $('cfg-aliases').replaceChildren(table([
    { title: 'Alias', cell: (a) => a.Name },
    { title: 'Version', cell: (a) => a.FunctionVersion },
    { title: 'Description', cell: (a) => a.Description ?? '' },
  ], aliases, (a) => a.Name));
  $('alias-version').replaceChildren(...versions.map((v) => el('option', {}, v.Version)));
  $('alias-version').value = versions[versions.length - 1]?.Version ?? '$LATEST';
}

async function save(event) {
  event.preventDefault();
  const name = current;
  try {
    const out = await client.updateFunctionConfiguration(name, {
      MemorySize: Number($('cfg-memory').value), Timeout: Number($('cfg-timeout').value),
      Environment: { Variables: parseEnvironment($('cfg-env').value) },
    });
    status(`Saved: ${out.MemorySize} MB, ${out.Timeout} s, ` +
      `${Object.keys(out.Environment?.Variables ?? {}).length} variables`, 'ok');
    await renderVersions(name);
  } catch (err) {
    status(describe(err), 'error');
  }
}

async function publish() {
  const name = current;
  try {
    const out = await client.publishVersion(name, $('version-description').value.trim());
    status(`Published version ${out.Version}`, 'ok');
    $('version-description').value = '';
    await renderVersions(name);
  } catch (err) {
    status(describe(err), 'error');
  }
}

async function alias(event) {
  event.preventDefault();
  const name = current;
  const aliasName = $('alias-name').value.trim();
  try {
    const out = await client.putAlias(name, aliasName, $('alias-version').value);
    status(`Alias ${out.Name} → version ${out.FunctionVersion}`, 'ok');
    await renderVersions(name);
  } catch (err) {
    status(describe(err), 'error');
  }
}

export function startConfig() {
  $('config-form').addEventListener('submit', save);
  $('publish-version').addEventListener('click', publish);
  $('alias-form').addEventListener('submit', alias);
}
