/*
 * official_client.mjs - the official @vercel/blob client against
 * vblobserver.js, to prove the test server speaks the protocol as the
 * client does before any test trusts it (tests/mount/test_vblob.py runs
 * this).  Needs BLOB_READ_WRITE_TOKEN, VERCEL_BLOB_API_URL and
 * VBLOB_BLOB_ORIGIN (http://127.0.0.1:PORT of the blob host) in the
 * environment.  Prints one line per check and "official client: N checks
 * passed"; exits non-zero on the first failure.
 *
 * The client's get() reads https://STORE.ACCESS.blob.vercel-storage.com/P;
 * an undici dispatcher sends those requests to the test server's blob host
 * instead (the request itself, headers and all, is the client's).
 */
import assert from 'node:assert/strict';
import * as blob from '@vercel/blob';
import { Agent, Dispatcher, setGlobalDispatcher } from 'undici';

const API = process.env.VERCEL_BLOB_API_URL;
const BLOB_ORIGIN = process.env.VBLOB_BLOB_ORIGIN;
const MiB = 1024 * 1024;
let checks = 0;

class ToTestServer extends Dispatcher {
	constructor() {
		super();
		this.agent = new Agent();
	}
	dispatch(opts, handler) {
		if (String(opts.origin).endsWith('.blob.vercel-storage.com'))
			opts = { ...opts, origin: BLOB_ORIGIN };
		return this.agent.dispatch(opts, handler);
	}
	close() { return this.agent.close(); }
	destroy() { return this.agent.destroy(); }
}
setGlobalDispatcher(new ToTestServer());

function ok(what) {
	checks++;
	console.log('ok ' + checks + ' ' + what);
}

async function faults(method, body) {
	const r = await fetch(API + '/__faults', { method, body: body && JSON.stringify(body) });
	return r.json();
}

async function rejects(promise, cls, what, test) {
	try {
		await promise;
	} catch (e) {
		assert.ok(e instanceof cls, what + ': ' + e.constructor.name + ' ' + e.message);
		if (test) test(e);
		ok(what);
		return;
	}
	assert.fail(what + ': no error');
}

async function readAll(stream) {
	const chunks = [];
	for await (const c of stream) chunks.push(Buffer.from(c));
	return Buffer.concat(chunks);
}

function pattern(n, seed) {
	const b = Buffer.alloc(n);
	let x = seed;
	for (let i = 0; i < n; i++) {
		x = (x * 1103515245 + 12345) >>> 0;
		b[i] = x >>> 24;
	}
	return b;
}

const priv = { access: 'private', addRandomSuffix: false };

/* ---- put, overwrite, random suffix ---- */
const r1 = await blob.put('docs/a.txt', 'hello world', { ...priv, contentType: 'text/plain' });
assert.equal(r1.pathname, 'docs/a.txt');
assert.equal(r1.contentType, 'text/plain');
assert.equal(new URL(r1.url).pathname, '/docs/a.txt');
assert.ok(r1.downloadUrl.endsWith('?download=1'));
assert.match(r1.etag, /^".+"$/);
ok('put: url, pathname, content type, etag');

await rejects(blob.put('docs/a.txt', 'again', priv), blob.BlobError, 'put over an existing blob is refused',
	      (e) => assert.match(e.message, /already exists/));
const r2 = await blob.put('docs/a.txt', 'HELLO WORLD!', { ...priv, allowOverwrite: true });
assert.equal(r2.pathname, 'docs/a.txt');
assert.notEqual(r2.etag, r1.etag);
ok('put with allowOverwrite replaces');

const r3 = await blob.put('docs/r.txt', 'suffixed', { access: 'private', addRandomSuffix: true });
assert.match(r3.pathname, /^docs\/r-[A-Za-z0-9]+\.txt$/);
ok('addRandomSuffix: ' + r3.pathname);

await rejects(blob.put('docs/a.txt', 'x', { ...priv, allowOverwrite: true, ifMatch: '"nope"' }),
	      blob.BlobPreconditionFailedError, 'ifMatch with a wrong etag: precondition_failed');

/* ---- head ---- */
const h1 = await blob.head('docs/a.txt');
assert.equal(h1.size, 12);
assert.equal(h1.contentType, 'text/plain');	/* replaced without one: from the extension */
assert.equal(h1.url, r2.url);
assert.ok(h1.uploadedAt instanceof Date && !isNaN(h1.uploadedAt));
const h2 = await blob.head(r3.url);
assert.equal(h2.size, 8);
ok('head by pathname and by URL');
await rejects(blob.head('docs/missing.txt'), blob.BlobNotFoundError, 'head of a missing blob: not_found');

/* ---- get (the blob host), ranges ---- */
const g1 = await blob.get('docs/a.txt', { access: 'private' });
assert.equal(g1.statusCode, 200);
assert.equal((await readAll(g1.stream)).toString(), 'HELLO WORLD!');
assert.equal(g1.blob.size, 12);
ok('get of a private blob (Bearer token)');
const g2 = await blob.get('docs/a.txt', { access: 'private', headers: { range: 'bytes=6-10' } });
assert.equal((await readAll(g2.stream)).toString(), 'WORLD');
assert.equal(g2.headers.get('content-range'), 'bytes 6-10/12');
ok('get with a Range');
assert.equal(await blob.get('docs/none.txt', { access: 'private' }), null);
ok('get of a missing blob: null');
await rejects(blob.get('docs/a.txt', { access: 'private', token: 'vercel_blob_rw_mvteststore_wrong' }),
	      blob.BlobError, 'get of a private blob with a wrong token fails');

/* ---- list with a cursor, folded ---- */
for (let i = 0; i < 7; i++)
	await blob.put('list/p' + i + '/f', 'x'.repeat(i + 1), priv);
await blob.put('list/top', 'top', priv);
let seen = [], cursor, pages = 0;
do {
	const page = await blob.list({ prefix: 'list/', limit: 3, cursor });
	seen = seen.concat(page.blobs.map((b) => b.pathname + ':' + b.size));
	cursor = page.hasMore ? page.cursor : undefined;
	pages++;
	assert.ok(pages < 10);
} while (cursor);
assert.deepEqual(seen, ['list/p0/f:1', 'list/p1/f:2', 'list/p2/f:3', 'list/p3/f:4', 'list/p4/f:5',
			'list/p5/f:6', 'list/p6/f:7', 'list/top:3']);
assert.equal(pages, 3);
ok('list: 8 blobs in 3 pages of 3 by cursor, in pathname order');
const folded = await blob.list({ prefix: 'list/', mode: 'folded' });
assert.equal(folded.folders.length, 7);
assert.deepEqual(folded.blobs.map((b) => b.pathname), ['list/top']);
ok('list mode=folded');

/* ---- multipart ---- */
const big = pattern(20 * MiB + 123, 7);
const m1 = await blob.put('big/one.bin', big, { ...priv, multipart: true });
assert.equal(m1.pathname, 'big/one.bin');
assert.equal((await blob.head('big/one.bin')).size, big.length);
const g3 = await blob.get('big/one.bin', { access: 'private', headers: { range: 'bytes=8388600-8388700' } });
assert.ok((await readAll(g3.stream)).equals(big.subarray(8388600, 8388701)));
const g4 = await blob.get('big/one.bin', { access: 'private' });
assert.ok((await readAll(g4.stream)).equals(big));
ok('put multipart: 3 parts of 8 MiB, read back whole and across a part boundary');

const up = await blob.createMultipartUploader('big/two.bin', priv);
const p2 = await up.uploadPart(2, big.subarray(8 * MiB, 9 * MiB));
const p1 = await up.uploadPart(1, big.subarray(0, 8 * MiB));
const m2 = await up.complete([p2, p1]);
assert.equal(m2.pathname, 'big/two.bin');
const g5 = await blob.get('big/two.bin', { access: 'private' });
assert.ok((await readAll(g5.stream)).equals(big.subarray(0, 9 * MiB)));
ok('createMultipartUploader: parts out of order, complete, read back');

const up2 = await blob.createMultipartUploader('big/small-parts.bin', priv);
const q1 = await up2.uploadPart(1, 'tiny');
const q2 = await up2.uploadPart(2, 'tail');
await rejects(up2.complete([q1, q2]), blob.BlobError, 'complete with a part under 5 MiB is refused');
await rejects(up2.complete([{ partNumber: 1, etag: '"x"' }]), blob.BlobError, 'complete with a wrong etag is refused');

/* ---- delete ---- */
await blob.del(['docs/a.txt', r3.url, 'docs/never-there']);
await rejects(blob.head('docs/a.txt'), blob.BlobNotFoundError, 'del by pathname');
await rejects(blob.head(r3.url), blob.BlobNotFoundError, 'del by URL (a missing one ignored)');

/* ---- errors and faults ---- */
await rejects(blob.put('x.txt', 'x', { ...priv, token: 'vercel_blob_rw_mvteststore_wrong' }),
	      blob.BlobAccessError, 'a wrong token: forbidden');
await rejects(blob.put('x//y.txt', 'x', priv), blob.BlobError, 'a pathname with // is refused by the client');

await faults('DELETE');
await faults('POST', { rules: [{ action: 'error', status: 503, code: 'service_unavailable', method: 'PUT', times: 1 }] });
await blob.put('fault/503.txt', 'ok', priv);
assert.equal((await faults('GET')).injected.error, 1);
ok('503 service_unavailable is retried by the client');

await faults('DELETE');
await faults('POST', { rules: [{ action: 'error', status: 500, code: 'internal_server_error', method: 'GET', times: 1 }] });
assert.equal((await blob.head('fault/503.txt')).size, 2);
ok('500 internal_server_error is retried by the client');

await faults('DELETE');
await faults('POST', { rules: [{ action: 'error', status: 429, code: 'rate_limited', retryAfter: 7, times: 1 }] });
await rejects(blob.head('fault/503.txt'), blob.BlobServiceRateLimited, '429 rate_limited: not retried, retryAfter',
	      (e) => assert.equal(e.retryAfter, 7));

await faults('DELETE');
await faults('POST', { rules: [{ action: 'cut', method: 'PUT', times: 1 }] });
const big2 = pattern(2 * MiB, 9);
await blob.put('fault/cut.bin', big2, priv);
assert.equal((await faults('GET')).injected.cut, 1);
const g6 = await blob.get('fault/cut.bin', { access: 'private' });
assert.ok((await readAll(g6.stream)).equals(big2));
ok('a PUT cut halfway: retried by the client, the blob whole');

await faults('DELETE');
await faults('POST', { rules: [{ action: 'cut', method: 'PUT' }] });
process.env.VERCEL_BLOB_RETRIES = '1';
await rejects(blob.put('fault/never.bin', big2, priv), Error, 'PUTs always cut: the client gives up');
delete process.env.VERCEL_BLOB_RETRIES;
await faults('DELETE');
await rejects(blob.head('fault/never.bin'), blob.BlobNotFoundError, '... and no partial blob exists');

await faults('POST', { rules: [{ action: 'cut', port: 'blob', times: 1 }] });
const g7 = await blob.get('fault/cut.bin', { access: 'private' });
await rejects(readAll(g7.stream), Error, 'a cut GET body is an error to the reader, not a short blob');
await faults('DELETE');

console.log('official client: ' + checks + ' checks passed');
