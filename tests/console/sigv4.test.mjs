// The console's SigV4 signer against botocore's: the cases and botocore's answers come from
// test_console_js.py (CONSOLE_FIXTURES names the folder); signed headers are written back.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { amzDate, canonicalQuery, sha256Hex, sign, uriEncode } from '../../src/berth/console/static/sigv4.js';

const fixtures = process.env.CONSOLE_FIXTURES;

test('amzDate is ISO 8601 basic format', () => {
  assert.equal(amzDate(new Date(Date.UTC(2026, 2, 4, 5, 6, 7, 890))), '20260304T050607Z');
});

test('uriEncode keeps only unreserved characters', () => {
  assert.equal(uriEncode("a-b_c.d~e f/g:h!'()*é"), 'a-b_c.d~e%20f%2Fg%3Ah%21%27%28%29%2A%C3%A9');
});

test('canonicalQuery encodes, sorts by key then value and drops undefined', () => {
  assert.equal(canonicalQuery({ Marker: 'a/b=', MaxItems: 5, A: undefined, 'x y': '' }),
    'Marker=a%2Fb%3D&MaxItems=5&x%20y=');
  assert.equal(canonicalQuery({}), '');
});

test('sha256Hex of nothing is the well-known empty hash', async () => {
  assert.equal(await sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('signatures equal botocore SigV4Auth for every case', { skip: !fixtures && 'run from pytest' }, async () => {
  const cases = JSON.parse(readFileSync(join(fixtures, 'sigv4-cases.json'), 'utf8'));
  assert.ok(cases.length >= 5);
  const signed = [];
  for (const c of cases) {
    const headers = await sign({
      method: c.method, url: c.url, headers: c.headers, body: Buffer.from(c.body_b64, 'base64'),
      region: c.region, service: c.service, accessKeyId: c.access_key,
      secretAccessKey: c.secret_key, sessionToken: c.token ?? undefined, now: new Date(c.now),
    });
    assert.equal(headers['X-Amz-Date'], c.expected['X-Amz-Date'], c.name);
    assert.equal(headers.Authorization, c.expected.Authorization, c.name);
    if (c.token) assert.equal(headers['X-Amz-Security-Token'], c.token, c.name);
    assert.equal(headers.Host, undefined, 'the HTTP client sends Host');
    signed.push({ name: c.name, headers });
  }
  writeFileSync(join(fixtures, 'sigv4-signed.json'), JSON.stringify(signed));
});

test('the signature changes with the secret, the body and the date', async () => {
  const base = { method: 'POST', url: 'http://127.0.0.1:4750/', body: '{}', region: 'us-east-1',
    service: 'logs', accessKeyId: 'AK', secretAccessKey: 'SK', now: new Date(0) };
  const auth = async (over) => (await sign({ ...base, ...over })).Authorization;
  const reference = await auth({});
  assert.notEqual(await auth({ secretAccessKey: 'SK2' }), reference);
  assert.notEqual(await auth({ body: '{ }' }), reference);
  assert.notEqual(await auth({ now: new Date(1000) }), reference);
  assert.equal(await auth({}), reference);
});
