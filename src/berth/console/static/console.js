// The console page: sign in, list functions, edit a function's handler file, test it, read its
// logs; and the other views the header links to (cluster, log browser).
import { Client } from './aws.js';
import { showCluster } from './cluster.js';
import { $, describe, route } from './dom.js';
import { hideConfig, showConfig, startConfig } from './fnconfig.js';
import { showLogs, startLogs, stopFollowing } from './logbrowser.js';
import { unzip, zip } from './zip.js';

const CREDS_KEY = 'berth.console.credentials';
const LOG_POLLS = 10;  // × 400 ms: logs are shipped a moment after the invocation ends
const TEMPLATES = {
  python: `import json


def handler(event, context):
    print("event:", json.dumps(event))
    return {"statusCode": 200, "body": f"hello from {context.function_name}"}
`,
  nodejs: `exports.handler = async (event, context) => {
  console.log('event:', JSON.stringify(event));
  return { statusCode: 200, body: \`hello from \${context.functionName}\` };
};
`,
};

const family = (runtime) => (runtime.startsWith('python') ? 'python' : 'nodejs');
const defaultHandler = (runtime) => (family(runtime) === 'python' ? 'app.handler' : 'index.handler');

let client = null;
/** The function in the editor: null while writing a new one. */
let current = null;

/** The package paths a handler ("dir/app.handler", "pkg.mod.handler") may live in. */
function handlerFiles(runtime, handler) {
  if (runtime.startsWith('provided')) return ['bootstrap'];
  const module = handler.slice(0, Math.max(handler.lastIndexOf('.'), 0)) || 'index';
  if (family(runtime) === 'python') return [module.replace(/\./g, '/') + '.py'];
  return ['.js', '.mjs', '.cjs'].map((ext) => module + ext);
}

function setStatus(text, kind = '') {
  const el = $('status');
  el.textContent = text;
  el.className = kind;
}

function loadCredentials() {
  try { return JSON.parse(sessionStorage.getItem(CREDS_KEY)); } catch { return null; }
}

const VIEWS = { functions: 'app-view', cluster: 'cluster-view', logs: 'logs-view' };

function show(signedIn) {
  $('signin-view').hidden = signedIn;
  $('whoami').hidden = !signedIn;
  $('views').hidden = !signedIn;
  if (signedIn) showView();
  else for (const id of Object.values(VIEWS)) $(id).hidden = true;
}

/** Show the view the hash names (#view=cluster, #view=logs; anything else: functions). */
async function showView() {
  const view = Object.hasOwn(VIEWS, route().get('view') ?? '') ? route().get('view') : 'functions';
  for (const [name, id] of Object.entries(VIEWS)) $(id).hidden = name !== view;
  for (const a of document.querySelectorAll('#views a')) a.className = a.dataset.view === view ? 'selected' : '';
  if (view !== 'logs') stopFollowing();
  if (view === 'cluster') await showCluster(client);
  else if (view === 'logs') await showLogs(client);
}

async function signIn(event) {
  event.preventDefault();
  const creds = {
    endpoint: location.origin,
    accessKeyId: $('access-key').value.trim(),
    secretAccessKey: $('secret-key').value.trim(),
    region: $('region').value.trim() || 'us-east-1',
  };
  $('signin-error').textContent = '';
  try {
    const candidate = new Client(creds);
    const functions = await candidate.listFunctions();   // proves the keys work
    sessionStorage.setItem(CREDS_KEY, JSON.stringify(creds));
    $('secret-key').value = '';
    await enter(candidate, functions);
  } catch (err) {
    $('signin-error').textContent = `Sign-in failed: ${describe(err)}`;
  }
}

function signOut() {
  sessionStorage.removeItem(CREDS_KEY);
  client = null;
  current = null;
  history.replaceState(null, '', location.pathname);
  show(false);
}

async function enter(signedIn, functions) {
  client = signedIn;
  $('identity').textContent = `${client.creds.accessKeyId} · ${client.creds.region}`;
  show(true);
  renderFunctions(functions ?? await client.listFunctions());
  const wanted = new URLSearchParams(location.hash.slice(1)).get('fn');
  if (wanted) await openFunction(wanted); else newFunction();
}

function renderFunctions(functions) {
  const list = $('function-list');
  list.replaceChildren(...functions.map((fn) => {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.name = fn.FunctionName;
    button.title = fn.FunctionName;
    button.className = current?.name === fn.FunctionName ? 'selected' : '';
    const name = document.createElement('span');
    name.textContent = fn.FunctionName;
    const runtime = document.createElement('small');
    runtime.textContent = fn.Runtime ?? fn.PackageType ?? '';
    button.append(name, runtime);
    button.addEventListener('click', () => openFunction(fn.FunctionName));
    item.append(button);
    return item;
  }));
  if (!functions.length) {
    const empty = document.createElement('li');
    empty.className = 'hint';
    empty.textContent = 'No functions yet.';
    list.append(empty);
  }
}

async function refreshFunctions() {
  try { renderFunctions(await client.listFunctions()); } catch (err) { setStatus(describe(err), 'error'); }
}

function fillEditor({ title, name, runtime, handler, role, file, code, editing }) {
  $('editor-title').textContent = title;
  $('fn-name').value = name;
  $('fn-role').value = role;
  const select = $('fn-runtime');
  if (![...select.options].some((o) => o.value === runtime)) select.add(new Option(runtime));
  select.value = runtime;
  $('fn-handler').value = handler;
  $('editor-file').textContent = file;
  $('code').value = code;
  for (const id of ['fn-name', 'fn-runtime', 'fn-handler', 'fn-role']) $(id).disabled = editing;
  $('deploy').textContent = editing ? 'Deploy' : 'Create function';
  $('test').disabled = !editing;
  $('logs-refresh').disabled = !editing;
  $('result').hidden = true;
  $('logs').textContent = '';
}

function newFunction() {
  current = null;
  if (!route().get('view')) history.replaceState(null, '', location.pathname);
  hideConfig();
  const runtime = 'python3.12';
  fillEditor({ title: 'New function', name: '', runtime, handler: defaultHandler(runtime),
    role: $('fn-role').defaultValue, file: handlerFiles(runtime, defaultHandler(runtime))[0], code: TEMPLATES.python, editing: false });
  setStatus('');
  for (const b of document.querySelectorAll('#function-list button')) b.className = '';
  $('fn-name').focus();
}

/** In a new function, switching runtime swaps the handler and an untouched template. */
function runtimeChanged() {
  if (current) return;
  const runtime = $('fn-runtime').value;
  if (Object.values(TEMPLATES).includes($('code').value)) $('code').value = TEMPLATES[family(runtime)];
  $('fn-handler').value = defaultHandler(runtime);
  $('editor-file').textContent = handlerFiles(runtime, defaultHandler(runtime))[0];
}

async function openFunction(name) {
  setStatus(`Loading ${name}…`);
  try {
    const fn = await client.getFunction(name);
    const config = fn.Configuration;
    if (config.PackageType === 'Image') throw new Error(`${name} is a container image function`);
    const entries = await unzip(await client.downloadCode(fn.Code.Location));
    const candidates = handlerFiles(config.Runtime, config.Handler);
    const file = candidates.find((path) => entries.some((e) => e.name === path)) ?? candidates[0];
    const entry = entries.find((e) => e.name === file);
    const code = entry ? new TextDecoder('utf-8', { fatal: true }).decode(entry.data) : '';
    current = { name, runtime: config.Runtime, file, entries };
    history.replaceState(null, '', `#fn=${encodeURIComponent(name)}`);
    fillEditor({ title: name, name, runtime: config.Runtime, handler: config.Handler, role: config.Role,
      file: entries.length > 1 ? `${file} (1 of ${entries.length} files)` : file, code, editing: true });
    showConfig(client, name);
    for (const b of document.querySelectorAll('#function-list button')) {
      b.className = b.dataset.name === name ? 'selected' : '';
    }
    setStatus(entry ? `Last modified ${config.LastModified}` : `${file} is not in the package yet`);
    await refreshLogs();
  } catch (err) {
    setStatus(`Could not open ${name}: ${describe(err)}`, 'error');
  }
}

async function deploy(event) {
  event.preventDefault();
  const code = $('code').value;
  $('deploy').disabled = true;
  try {
    if (current) {
      setStatus(`Deploying ${current.name}…`);
      const previous = current.entries.find((e) => e.name === current.file);
      const edited = { name: current.file, data: new TextEncoder().encode(code), mode: previous?.mode ?? 0o644 };
      const files = previous ? current.entries.map((e) => (e === previous ? edited : e))
        : [...current.entries, edited];
      const out = await client.updateFunctionCode(current.name, zip(files));
      current.entries = files;
      setStatus(`Deployed ${current.name} (${out.CodeSize} bytes)`, 'ok');
    } else {
      const runtime = $('fn-runtime').value;
      const handler = $('fn-handler').value.trim();
      const name = $('fn-name').value.trim();
      const role = $('fn-role').value.trim();
      const file = handlerFiles(runtime, handler)[0];
      setStatus(`Creating ${name}…`);
      await client.createFunction({ name, runtime, handler, role,
        zipBytes: zip([{ name: file, data: code }]) });
      current = { name, runtime, file, entries: [{ name: file, data: new TextEncoder().encode(code), mode: 0o644 }] };
      history.replaceState(null, '', `#fn=${encodeURIComponent(name)}`);
      fillEditor({ title: name, name, runtime, handler, role, file, code, editing: true });
      showConfig(client, name);
      await refreshFunctions();
      setStatus(`Created ${name}`, 'ok');
    }
  } catch (err) {
    setStatus(describe(err), 'error');
  } finally {
    $('deploy').disabled = false;
  }
}

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

async function test() {
  if (!current) return;
  const payload = $('event').value.trim() || '{}';
  try {
    JSON.parse(payload);
  } catch (err) {
    setStatus(`The test event is not valid JSON: ${err.message}`, 'error');
    return;
  }
  $('test').disabled = true;
  setStatus(`Invoking ${current.name}…`);
  const started = performance.now();
  try {
    const out = await client.invoke(current.name, payload);
    const took = Math.round(performance.now() - started);
    $('result').hidden = false;
    $('result-status').textContent = out.functionError
      ? `Failed (${out.functionError}) · ${took} ms`
      : `Succeeded · status ${out.status} · ${out.version ?? '$LATEST'} · ${took} ms`;
    $('result-status').className = out.functionError ? 'error' : 'ok';
    $('result-payload').textContent = pretty(out.payload);
    $('result-log').textContent = lines(out.log);
    setStatus('');
    refreshLogs(out.log.match(/^REPORT RequestId: (\S+)/m)?.[1]);  // in the background
  } catch (err) {
    setStatus(describe(err), 'error');
  } finally {
    $('test').disabled = false;
  }
}

/** Multi-line log events (tracebacks) separate their lines with CR, as Lambda's runtimes do. */
const lines = (text) => text.replace(/\r\n?/g, '\n');

function clock(ms) {
  const d = new Date(ms);
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** Show the function's recent log events; given an invocation's request id, keep polling
 * (briefly) until its REPORT line has been shipped. */
async function refreshLogs(requestId) {
  if (!current) return;
  const name = current.name;
  const group = `/aws/lambda/${name}`;
  for (let attempt = 0; attempt < LOG_POLLS; attempt++) {
    let events = [];
    try {
      events = await client.recentLogEvents(group);
      $('logs').textContent = events.length
        ? events.map((e) => `${clock(e.timestamp)}  ${lines(e.message.replace(/\n$/, ''))}`).join('\n')
        : 'No log events in the last hour.';
      $('logs').scrollTop = $('logs').scrollHeight;
    } catch (err) {
      $('logs').textContent = err.code === 'ResourceNotFoundException'
        ? `No logs yet (${group} does not exist).` : describe(err);
    }
    const shipped = events.some((e) => e.message.startsWith(`REPORT RequestId: ${requestId}`));
    if (!requestId || shipped || current?.name !== name) return;
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

/** Tab indents in code editors; Ctrl/Cmd+S deploys, Ctrl/Cmd+Enter tests. */
function keys(event) {
  const target = event.target;
  if (event.key === 'Tab' && target.tagName === 'TEXTAREA' && !event.shiftKey) {
    event.preventDefault();
    const runtime = $('fn-runtime').value;
    target.setRangeText(family(runtime) === 'python' && target.id === 'code' ? '    ' : '  ',
      target.selectionStart, target.selectionEnd, 'end');
  } else if ((event.ctrlKey || event.metaKey) && event.key === 's' && client) {
    event.preventDefault();
    $('editor').requestSubmit();
  } else if ((event.ctrlKey || event.metaKey) && event.key === 'Enter' && current) {
    event.preventDefault();
    test();
  }
}

function start() {
  $('signin').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('new-function').addEventListener('click', newFunction);
  $('refresh-functions').addEventListener('click', refreshFunctions);
  $('fn-runtime').addEventListener('change', runtimeChanged);
  $('editor').addEventListener('submit', deploy);
  $('test').addEventListener('click', test);
  $('logs-refresh').addEventListener('click', () => refreshLogs());
  document.addEventListener('keydown', keys);
  $('refresh-cluster').addEventListener('click', showView);
  window.addEventListener('hashchange', () => { if (client) showView(); });
  startLogs();
  startConfig();
  const saved = loadCredentials();
  if (saved) {
    enter(new Client(saved)).catch((err) => {
      signOut();
      $('signin-error').textContent = `Please sign in again: ${describe(err)}`;
    });
  } else {
    show(false);
  }
}

start();
