// A cluster's services: counts, and one service with its deployments and events, where the
// desired count can be set.
import * as ecs from './ecs.js';
import { button, describe, el, facts, table, tail, when } from './dom.js';
import { clusterRoute, setStatus, showCluster } from './cluster.js';

const counts = (s) => `${s.runningCount} running · ${s.pendingCount} pending · ${s.desiredCount} desired`;

export async function renderServices(client, cluster) {
  const list = await ecs.services(client, cluster);
  const open = (s) => el('a', { href: '#', onclick: (e) => { e.preventDefault(); clusterRoute({ service: s.serviceName }); } },
    s.serviceName);
  return table([
    { title: 'Service', cell: open },
    { title: 'Status', cell: (s) => s.status },
    { title: 'Desired', cell: (s) => s.desiredCount },
    { title: 'Running', cell: (s) => s.runningCount },
    { title: 'Pending', cell: (s) => s.pendingCount },
    { title: 'Definition', cell: (s) => tail(s.taskDefinition) },
    { title: 'Deployments', cell: (s) => (s.deployments ?? []).map((d) => `${d.status} ${d.rolloutState ?? ''}`).join(', ') },
  ], list, (s) => s.serviceName);
}

export async function renderService(client, cluster, name) {
  const out = await client.ecs('DescribeServices', { cluster, services: [name] });
  const service = out.services[0];
  if (!service) return el('p', { className: 'error' }, `Service ${name} not found.`);
  const desired = el('input', { id: 'desired-count', type: 'number', min: 0, value: service.desiredCount });
  const update = button('Set desired count', async () => {
    update.disabled = true;
    try {
      const answer = await client.ecs('UpdateService', { cluster, service: service.serviceName,
        desiredCount: Number(desired.value) });
      await showCluster(client);
      setStatus(`${name}: desired count ${answer.service.desiredCount}`, 'ok');
    } catch (err) {
      setStatus(describe(err), 'error');
    } finally {
      update.disabled = false;
    }
  }, { id: 'set-desired' });
  return el('div', { className: 'stack', id: 'service-detail' },
    el('div', { className: 'row' },
      button('← Services', () => clusterRoute({ service: null }), { className: 'quiet' }),
      el('div', { className: 'row' }, el('label', { className: 'inline' }, 'Desired count', desired), update)),
    facts([
      ['Service', service.serviceArn], ['Status', service.status],
      ['Counts', counts(service)], ['Task definition', tail(service.taskDefinition)],
      ['Launch type', service.launchType], ['Scheduling', service.schedulingStrategy],
      ['Deployment', service.deploymentConfiguration
        ? `min ${service.deploymentConfiguration.minimumHealthyPercent}% · max ${service.deploymentConfiguration.maximumPercent}%` : null],
      ['Created', when(service.createdAt)],
    ]),
    el('h3', {}, 'Deployments'),
    table([
      { title: 'Id', cell: (d) => d.id },
      { title: 'Status', cell: (d) => `${d.status} ${d.rolloutState ?? ''}` },
      { title: 'Definition', cell: (d) => tail(d.taskDefinition) },
      { title: 'Desired', cell: (d) => d.desiredCount },
      { title: 'Running', cell: (d) => d.runningCount },
      { title: 'Pending', cell: (d) => d.pendingCount },
      { title: 'Failed', cell: (d) => d.failedTasks ?? 0 },
      { title: 'Updated', cell: (d) => when(d.updatedAt) },
    ], service.deployments ?? [], (d) => d.id),
    el('h3', {}, 'Events'),
    el('ul', { className: 'events', id: 'service-events' },
      (service.events ?? []).slice(0, 30).map((e) => el('li', {},
        el('small', {}, when(e.createdAt)), ' ', e.message))));
}
