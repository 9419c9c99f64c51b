// The cluster view: clusters, and one cluster's container instances, tasks, services and a
// form to run a task. The route says what is shown: #view=cluster&cluster=C&tab=T[&task=ID
// |&service=NAME].
import * as ecs from './ecs.js';
import { $, button, describe, el, go, route, table, tail } from './dom.js';
import { renderTask, renderTasks } from './tasks.js';
import { renderService, renderServices } from './services.js';

const TABS = [['instances', 'Container instances'], ['tasks', 'Tasks'], ['services', 'Services'],
  ['run', 'Run task']];

export function clusterRoute(changes) {
  setStatus('');
  const params = route();
  const next = { view: 'cluster', cluster: params.get('cluster') ?? '', tab: params.get('tab') ?? 'instances', ...changes };
  go(Object.fromEntries(Object.entries(next).filter(([, v]) => v !== null && v !== '')));
}

export function setStatus(text, kind = '') {
  $('cluster-status').textContent = text;
  $('cluster-status').className = kind;
}

let renders = 0;     // a render that a newer one overtook while it waited writes nothing

export async function showCluster(client) {
  const turn = ++renders;
  const params = route();
  let all;
  try {
    all = await ecs.clusters(client);
  } catch (err) {
    if (turn === renders) setStatus(describe(err), 'error');
    return;
  }
  if (turn !== renders) return;
  const name = params.get('cluster') || all[0]?.clusterName;
  const current = all.find((c) => c.clusterName === name);
  $('cluster-list').replaceChildren(...all.map((c) => el('li', {},
    button([el('span', {}, c.clusterName), el('small', {},
      `${c.registeredContainerInstancesCount} inst · ${c.runningTasksCount} run`)],
    () => clusterRoute({ cluster: c.clusterName, tab: 'instances', task: null, service: null }),
    { className: c.clusterName === name ? 'selected' : '', dataset: { name: c.clusterName } }))));
  if (!all.length) $('cluster-list').append(el('li', { className: 'hint' }, 'No clusters yet.'));
  $('cluster-title').textContent = current ? current.clusterName : 'No cluster';
  $('cluster-facts').textContent = current
    ? `${current.status} · ${current.registeredContainerInstancesCount} instances · ` +
      `${current.runningTasksCount} running, ${current.pendingTasksCount} pending tasks · ` +
      `${current.activeServicesCount} services` : '';
  const tab = params.get('tab') || 'instances';
  $('cluster-tabs').replaceChildren(...TABS.map(([id, title]) => button(title,
    () => clusterRoute({ tab: id, task: null, service: null }),
    { className: id === tab ? 'tab selected' : 'tab', dataset: { tab: id } })));
  const body = $('cluster-body');
  if (!current) {
    body.replaceChildren(el('p', { className: 'hint' },
      'No cluster yet: `berth up` creates `default` when its agent joins.'));
    return;
  }
  let view;
  try {
    if (tab === 'instances') view = await renderInstances(client, name);
    else if (tab === 'tasks' && params.get('task')) view = await renderTask(client, name, params.get('task'));
    else if (tab === 'tasks') view = await renderTasks(client, name, params.get('stopped') === '1');
    else if (tab === 'services' && params.get('service')) view = await renderService(client, name, params.get('service'));
    else if (tab === 'services') view = await renderServices(client, name);
    else view = await renderRun(client, name);
  } catch (err) {
    view = el('p', { className: 'error' }, describe(err));
  }
  if (turn === renders) body.replaceChildren(view);
}

function amounts(inst, name, unit = '') {
  const registered = ecs.resource(inst.registeredResources, name);
  const remaining = ecs.resource(inst.remainingResources, name);
  return el('span', { className: 'amount' },
    el('b', {}, `${registered - remaining}${unit}`), ` used of ${registered}${unit}`,
    el('br'), el('small', {}, `${remaining}${unit} remaining`));
}

async function renderInstances(client, cluster) {
  const list = await ecs.instances(client, cluster);
  const toggle = (inst) => {
    const target = inst.status === 'DRAINING' ? 'ACTIVE' : 'DRAINING';
    return button(target === 'DRAINING' ? 'Drain' : 'Activate', async () => {
      try {
        await client.ecs('UpdateContainerInstancesState',
          { cluster, containerInstances: [inst.containerInstanceArn], status: target });
        await showCluster(client);
        setStatus(`${tail(inst.containerInstanceArn)} is ${target}`, 'ok');
      } catch (err) { setStatus(describe(err), 'error'); }
    }, { className: 'quiet', dataset: { action: target } });
  };
  return table([
    { title: 'Instance', cell: (i) => [el('b', {}, i.ec2InstanceId), el('br'), el('small', { className: 'mono' }, tail(i.containerInstanceArn))] },
    { title: 'Status', cell: (i) => el('span', { className: `pill ${i.status.toLowerCase()}` }, i.status) },
    { title: 'Agent', cell: (i) => el('span', { className: i.agentConnected ? 'ok' : 'error' }, i.agentConnected ? 'connected' : 'disconnected') },
    { title: 'CPU units', cell: (i) => amounts(i, 'CPU') },
    { title: 'Memory', cell: (i) => amounts(i, 'MEMORY', ' MiB') },
    { title: 'Ports taken', cell: (i) => ecs.resource(i.remainingResources, 'PORTS').join(', ') },
    { title: 'Tasks', cell: (i) => `${i.runningTasksCount} running, ${i.pendingTasksCount} pending` },
    { title: 'Attributes', cell: (i) => el('small', { className: 'mono' }, (i.attributes ?? [])
      .map((a) => (a.value ? `${a.name}=${a.value}` : a.name)).join('\n')) },
    { title: '', cell: (i) => (i.status === 'INACTIVE' ? '' : toggle(i)) },
  ], list, (i) => i.containerInstanceArn);
}

async function renderRun(client, cluster) {
  const families = await client.all((nextToken) => client.ecs('ListTaskDefinitionFamilies',
    { status: 'ACTIVE', nextToken }), 'families');
  const family = el('select', { id: 'run-family' }, families.map((f) => el('option', {}, f)));
  const count = el('input', { id: 'run-count', type: 'number', min: 1, max: 10, value: 1 });
  const startedBy = el('input', { id: 'run-started-by', value: 'console', maxLength: 36 });
  const result = el('div', { id: 'run-result' });
  const run = button('Run task', async () => {
    run.disabled = true;
    try {
      const out = await client.ecs('RunTask', { cluster, taskDefinition: family.value,
        count: Number(count.value), startedBy: startedBy.value || undefined });
      result.replaceChildren(
        ...out.tasks.map((t) => el('p', { className: 'ok' }, 'Started ',
          el('a', { href: `#view=cluster&cluster=${encodeURIComponent(cluster)}&tab=tasks&task=${tail(t.taskArn)}` }, tail(t.taskArn)))),
        ...out.failures.map((f) => el('p', { className: 'error' }, `${f.reason} ${f.detail ?? ''} ${tail(f.arn ?? '')}`)));
    } catch (err) {
      result.replaceChildren(el('p', { className: 'error' }, describe(err)));
    } finally {
      run.disabled = false;
    }
  }, { id: 'run-task' });
  if (!families.length) run.disabled = true;
  return el('div', { className: 'stack' },
    el('div', { className: 'fields' },
      el('label', {}, 'Task definition (latest revision)', family),
      el('label', {}, 'Count', count), el('label', {}, 'Started by', startedBy)),
    el('div', { className: 'row' }, el('span', { className: 'hint' },
      families.length ? 'berth places the tasks (RunTask).' : 'No task definitions yet.'), run),
    result);
}
