// The console's ZIP writer and reader. Archives Python wrote (deflated, stored, streamed with
// data descriptors) come from test_console_js.py in CONSOLE_FIXTURES; zip.js's own archive is
// written back there for Python's zipfile to open.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { crc32, unzip, zip, ZipError } from '../../src/berth/console/static/zip.js';

const fixtures = process.env.CONSOLE_FIXTURES;
const text = new TextEncoder();
const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);

// The same files test_console_js.py expects back from js.zip.
const FILES = [
  { name: 'app.py', data: 'def handler(event, context):\n    return {"ok": True}\n' },
  { name: 'lib/ünïcode ✓.txt', data: 'héllo\n' },
  { name: 'bin/tool', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
  { name: 'empty', data: '' },
  { name: 'bytes.bin', data: bytes },
];

test('crc32 of the check string', () => {
  assert.equal(crc32(text.encode('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array()), 0);
});

test('zip then unzip gives the files back, modes included', async () => {
  const entries = await unzip(zip(FILES));
  assert.deepEqual(entries.map((e) => e.name), FILES.map((f) => f.name));
  for (const [i, f] of FILES.entries()) {
    const data = typeof f.data === 'string' ? text.encode(f.data) : f.data;
    assert.deepEqual(entries[i].data, data, f.name);
    assert.equal(entries[i].mode, f.mode ?? 0o644, f.name);
  }
});

test('a zip for Python to open', { skip: !fixtures && 'run from pytest' }, () => {
  writeFileSync(join(fixtures, 'js.zip'), zip(FILES, new Date(2026, 0, 2, 3, 4, 6)));
});

test('unzips what Python wrote: deflated, stored and streamed', { skip: !fixtures && 'run from pytest' }, async () => {
  const expected = JSON.parse(readFileSync(join(fixtures, 'python-zips.json'), 'utf8'));
  assert.ok(Object.keys(expected).length >= 3);
  for (const [archive, files] of Object.entries(expected)) {
    const entries = await unzip(readFileSync(join(fixtures, archive)));
    assert.deepEqual(entries.map((e) => e.name), files.map((f) => f.name), archive);
    for (const [i, f] of files.entries()) {
      assert.deepEqual(Buffer.from(entries[i].data), Buffer.from(f.b64, 'base64'), `${archive}: ${f.name}`);
      assert.equal(entries[i].mode, f.mode, `${archive}: ${f.name}`);
    }
  }
});

test('refuses what is not a zip, and a corrupted entry', async () => {
  await assert.rejects(unzip(text.encode('definitely not a zip archive at all')), ZipError);
  await assert.rejects(unzip(new Uint8Array(3)), ZipError);
  const archive = zip([{ name: 'a.txt', data: 'some content' }]);
  archive[30 + 'a.txt'.length] ^= 0xff;      // flip the first byte of the stored data
  await assert.rejects(unzip(archive), /bad CRC/);
});
