#!/usr/bin/env node
/*
 * vblobserver.js - a Vercel Blob store for the tests: the REST API (version
 * 12) as the official @vercel/blob 2.8.0 client speaks it, on 127.0.0.1.
 *
 *   node vblobserver.js --dir DIR --api-port N --blob-port M --store ID --token T
 *
 * Two listeners, as the service has two hosts: the API (VERCEL_BLOB_API_URL;
 * the client's requestApi) and the blob host whose URLs the API's replies
 * carry (https://ID.ACCESS.blob.vercel-storage.com/PATHNAME on the real
 * service; http://127.0.0.1:M/PATHNAME here).
 *
 * API (every request: "authorization: Bearer T", "x-api-version"):
 *   PUT  /?pathname=P            body = the blob; x-vercel-blob-access (public|
 *                                private), x-content-type, x-add-random-suffix,
 *                                x-allow-overwrite, x-cache-control-max-age
 *   GET  /?url=U                 head: U is a blob URL or a pathname
 *   GET  /?prefix&limit&cursor&mode   list, in pathname order
 *   POST /delete                 {"urls": [URL or pathname, ...]}
 *   POST /mpu?pathname=P         x-mpu-action: create | upload | complete
 *                                (x-mpu-key, x-mpu-upload-id, x-mpu-part-number;
 *                                complete's body [{partNumber, etag}])
 * Errors are {"error": {"code", "message"}} with the service's statuses:
 * forbidden 403, not_found 404, bad_request 400, rate_limited 429 (with
 * retry-after), service_unavailable 503, internal_server_error 500.
 *
 * Blob host: GET/HEAD /PATHNAME with Range; a private blob wants the same
 * Bearer token.
 *
 * Faults, for the tests (never part of the service): POST /__faults on the
 * API port with {"rules": [{action, status, code, retryAfter, method, path,
 * port, times, every}]} adds rules; GET /__faults answers {"injected":
 * {action: n}, "requests": n}; DELETE /__faults clears.  Actions:
 *   "error"  answer STATUS with {error: {code: CODE}} (and retry-after)
 *   "cut"    a GET's reply stops halfway and the connection is closed; a
 *            request with a body is cut after half of it arrived (nothing kept)
 *   "reset"  close the connection without an answer
 *   "count"  nothing: only counted (the rules after it still apply)
 * PORT is "api" or "blob" (default: either); PATH a regular expression
 * matched against the request's path and query.
 *
 * Blobs live in DIR (one file each, written to a temp file and renamed, so
 * a reader sees a whole blob or none); the index is kept in memory.
 */
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

function args() {
	const a = {};
	for (let i = 2; i < process.argv.length; i += 2)
		a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
	for (const k of ['dir', 'api-port', 'blob-port', 'store', 'token'])
		if (!a[k]) {
			console.error('vblobserver: --' + k + ' is required');
			process.exit(2);
		}
	return a;
}

const opt = args();
const DIR = opt.dir;
const TOKEN = opt.token;
const BLOB_BASE = 'http://127.0.0.1:' + opt['blob-port'] + '/';
const MIN_PART = 5 * 1024 * 1024;	/* every part but the last, as on S3 */
const MAX_PATHNAME = 950;

fs.mkdirSync(path.join(DIR, 'blobs'), { recursive: true });
fs.mkdirSync(path.join(DIR, 'parts'), { recursive: true });

const blobs = new Map();	/* pathname -> {size, etag, contentType, access, uploadedAt, file, cacheControl} */
const uploads = new Map();	/* uploadId -> {pathname, key, parts: Map(partNumber -> {etag, file, size})} */
let rules = [];
const injected = {};
let requests = 0;
let seq = 0;

/* ---- replies ---------------------------------------------------------------- */

function sendJson(res, status, obj, headers) {
	const body = Buffer.from(JSON.stringify(obj));
	res.writeHead(status, Object.assign({ 'content-type': 'application/json', 'content-length': body.length },
					    headers || {}));
	res.end(body);
}

const MESSAGES = {
	forbidden: 'Access denied, please provide a valid token for this resource.',
	not_found: 'The requested blob does not exist',
	bad_request: 'Bad request',
	rate_limited: 'Too many requests',
	service_unavailable: 'The blob service is currently not available.',
	internal_server_error: 'Internal server error',
	store_not_found: 'This store does not exist.',
};

function sendError(res, status, code, message, headers) {
	sendJson(res, status, { error: { code, message: message || MESSAGES[code] || code } }, headers);
}

function blobUrl(pathname) {
	return BLOB_BASE + pathname.split('/').map(encodeURIComponent).join('/');
}

function downloadUrl(pathname) {
	return blobUrl(pathname) + '?download=1';
}

function putResult(pathname, b) {
	return {
		url: blobUrl(pathname), downloadUrl: downloadUrl(pathname), pathname,
		contentType: b.contentType, contentDisposition: disposition(pathname), etag: b.etag,
	};
}

function headResult(pathname, b) {
	return {
		url: blobUrl(pathname), downloadUrl: downloadUrl(pathname), pathname, size: b.size,
		uploadedAt: b.uploadedAt, contentType: b.contentType, contentDisposition: disposition(pathname),
		cacheControl: b.cacheControl, etag: b.etag,
	};
}

function disposition(pathname) {
	return 'attachment; filename="' + path.posix.basename(pathname).replace(/"/g, '') + '"';
}

/* ---- faults ------------------------------------------------------------------- */

function pickRule(port, req) {
	for (const r of rules) {
		if (r.port && r.port !== port) continue;
		if (r.method && r.method !== req.method) continue;
		if (r.path && !new RegExp(r.path).test(req.url)) continue;
		if (r.times !== undefined && r.times <= 0) continue;
		r.seen = (r.seen || 0) + 1;
		if (r.seen % (r.every || 1)) continue;
		if (r.times !== undefined) r.times--;
		injected[r.action] = (injected[r.action] || 0) + 1;
		if (r.action === 'count') continue;
		return r;
	}
	return null;
}

/* Applies RULE; true when the request has been dealt with. */
function applyFault(rule, req, res) {
	if (rule.action === 'reset') {
		req.socket.resetAndDestroy ? req.socket.resetAndDestroy() : req.socket.destroy();
		return true;
	}
	if (rule.action === 'error') {
		const h = rule.retryAfter !== undefined ? { 'retry-after': String(rule.retryAfter) } : {};
		req.resume();
		req.on('end', () => sendError(res, rule.status || 503, rule.code || 'service_unavailable', rule.message, h));
		return true;
	}
	if (rule.action === 'cut' && req.method !== 'GET' && req.method !== 'HEAD') {
		const want = Number(req.headers['content-length'] || 0);
		let got = 0;
		req.on('data', (c) => {
			got += c.length;
			if (got >= want / 2) req.socket.destroy();
		});
		req.on('end', () => req.socket.destroy());
		return true;
	}
	return false;	/* a GET's cut is done by the reply (rule.action === 'cut') */
}

/* ---- bodies -------------------------------------------------------------------- */

function readAll(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => resolve(Buffer.concat(chunks)));
		req.on('error', reject);
		req.on('aborted', () => reject(new Error('aborted')));
	});
}

/* Streams REQ's body into a temp file; resolves {file, size, md5} once all
 * of it arrived, rejects (and removes the file) when the client went away. */
function receive(req) {
	return new Promise((resolve, reject) => {
		const tmp = path.join(DIR, 'parts', '.tmp.' + process.pid + '.' + (++seq));
		const out = fs.createWriteStream(tmp);
		const h = crypto.createHash('md5');
		let size = 0, failed = false;
		const fail = (e) => {
			if (failed) return;
			failed = true;
			out.destroy();
			fs.rm(tmp, { force: true }, () => reject(e));
		};
		req.on('data', (c) => {
			size += c.length;
			h.update(c);
		});
		req.on('aborted', () => fail(new Error('aborted')));
		req.on('error', fail);
		out.on('error', fail);
		out.on('finish', () => {
			if (failed) return;
			if (!req.complete) return fail(new Error('aborted'));
			resolve({ file: tmp, size, md5: h.digest('hex') });
		});
		req.pipe(out);
	});
}

function contentTypeOf(req, pathname) {
	const t = req.headers['x-content-type'];
	if (t) return t;
	const ext = path.posix.extname(pathname).toLowerCase();
	return { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.txt': 'text/plain',
		 '.json': 'application/json' }[ext] || 'application/octet-stream';
}

/* The pathname a put writes to, after the random suffix; an error string
 * when the request is wrong. */
function targetPathname(req, pathname) {
	if (!pathname) return [null, 'pathname is required'];
	if (pathname.length > MAX_PATHNAME) return [null, 'pathname is too long, maximum length is ' + MAX_PATHNAME];
	if (pathname.includes('//')) return [null, 'pathname cannot contain "//"'];
	const access = req.headers['x-vercel-blob-access'];
	if (access !== 'public' && access !== 'private') return [null, 'access must be "private" or "public"'];
	if (req.headers['x-add-random-suffix'] === '1') {
		const ext = path.posix.extname(pathname);
		const base = ext ? pathname.slice(0, -ext.length) : pathname;
		pathname = base + '-' + crypto.randomBytes(15).toString('base64url').replace(/[-_]/g, 'x') + ext;
	}
	return [pathname, null];
}

function mayWrite(req, res, pathname) {
	if (blobs.has(pathname) && req.headers['x-allow-overwrite'] !== '1') {
		sendError(res, 400, 'bad_request', 'This blob already exists, use `allowOverwrite: true` if you want to ' +
			  'overwrite it. Or `addRandomSuffix: true` to generate a unique filename.');
		return false;
	}
	if (req.headers['x-if-match'] && (!blobs.has(pathname) || blobs.get(pathname).etag !== req.headers['x-if-match'])) {
		sendError(res, 412, 'precondition_failed', 'Precondition failed: ETag mismatch.');
		return false;
	}
	return true;
}

/* Makes FILE (size, md5) the blob PATHNAME: renamed into place. */
function commit(req, pathname, file, size, md5) {
	/* a file of its own: a reader of the blob it replaces keeps reading that */
	const dest = path.join(DIR, 'blobs', crypto.createHash('sha256').update(pathname).digest('hex') + '.' + (++seq));
	const old = blobs.get(pathname);
	fs.renameSync(file, dest);
	if (old) setTimeout(() => fs.rm(old.file, { force: true }, () => {}), 5000);
	const b = {
		size, etag: '"' + md5 + '"', contentType: contentTypeOf(req, pathname),
		access: req.headers['x-vercel-blob-access'], uploadedAt: new Date().toISOString(), file: dest,
		cacheControl: 'public, max-age=' + (req.headers['x-cache-control-max-age'] || '2592000'),
	};
	blobs.set(pathname, b);
	return b;
}

/* A blob URL or a pathname -> the pathname. */
function pathnameOf(urlOrPathname) {
	if (/^https?:\/\//.test(urlOrPathname)) {
		try {
			return decodeURIComponent(new URL(urlOrPathname).pathname.slice(1));
		} catch {
			return null;
		}
	}
	return urlOrPathname;
}

/* ---- the API ---------------------------------------------------------------------- */

async function put(req, res, q) {
	const [pathname, bad] = targetPathname(req, q.get('pathname'));
	if (bad) {
		req.resume();
		return sendError(res, 400, 'bad_request', bad);
	}
	if (q.get('fromUrl')) {
		req.resume();
		return sendError(res, 400, 'bad_request', 'copy is not supported by this test server');
	}
	if (!mayWrite(req, res, pathname)) {
		req.resume();
		return;
	}
	let got;
	try {
		got = await receive(req);
	} catch {
		return;	/* the client went away: nothing is kept */
	}
	const xlen = req.headers['x-content-length'];
	if (xlen !== undefined && Number(xlen) !== got.size) {
		fs.rmSync(got.file, { force: true });
		return sendError(res, 400, 'bad_request', 'x-content-length does not match the body');
	}
	sendJson(res, 200, putResult(pathname, commit(req, pathname, got.file, got.size, got.md5)));
}

function head(res, q) {
	const pathname = pathnameOf(q.get('url'));
	const b = pathname !== null && blobs.get(pathname);
	if (!b) return sendError(res, 404, 'not_found');
	sendJson(res, 200, headResult(pathname, b));
}

function list(res, q) {
	const prefix = q.get('prefix') || '';
	let limit = Number(q.get('limit') || 1000);
	if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
		return sendError(res, 400, 'bad_request', 'limit must be between 1 and 1000');
	let after = '';
	if (q.get('cursor')) {
		try {
			after = JSON.parse(Buffer.from(q.get('cursor'), 'base64url').toString()).after;
		} catch {
			return sendError(res, 400, 'bad_request', 'invalid cursor');
		}
	}
	const folded = q.get('mode') === 'folded';
	const names = [...blobs.keys()].filter((p) => p.startsWith(prefix) && p > after).sort(
		(a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
	const out = [], folders = new Set();
	let last = '';
	for (const p of names) {
		if (out.length + folders.size >= limit) break;
		last = p;
		if (folded) {
			const slash = p.indexOf('/', prefix.length);
			if (slash >= 0) {
				folders.add(p.slice(0, slash + 1));
				continue;
			}
		}
		const b = blobs.get(p);
		out.push({ url: blobUrl(p), downloadUrl: downloadUrl(p), pathname: p, size: b.size,
			   uploadedAt: b.uploadedAt, etag: b.etag });
	}
	const hasMore = names.length > 0 && last !== names[names.length - 1];
	const reply = { blobs: out, hasMore };
	if (hasMore) reply.cursor = Buffer.from(JSON.stringify({ after: last })).toString('base64url');
	if (folded) reply.folders = [...folders];
	sendJson(res, 200, reply);
}

async function del(req, res) {
	let body;
	try {
		body = JSON.parse((await readAll(req)).toString() || 'null');
	} catch {
		return sendError(res, 400, 'bad_request', 'the body must be {"urls": [...]}');
	}
	if (!body || !Array.isArray(body.urls) || body.urls.some((u) => typeof u !== 'string'))
		return sendError(res, 400, 'bad_request', 'the body must be {"urls": [...]}');
	for (const u of body.urls) {
		const p = pathnameOf(u);
		const b = p !== null && blobs.get(p);
		if (b) {
			blobs.delete(p);
			fs.rm(b.file, { force: true }, () => {});
		}
	}
	sendJson(res, 200, {});
}

function uploadOf(req, res) {
	const id = req.headers['x-mpu-upload-id'];
	const u = id && uploads.get(id);
	let key = req.headers['x-mpu-key'];
	try {
		key = key && decodeURIComponent(key);
	} catch {
		key = null;
	}
	if (!u || u.key !== key) {
		req.resume();
		sendError(res, 404, 'not_found', 'The multipart upload does not exist');
		return null;
	}
	return u;
}

async function mpu(req, res, q) {
	const action = req.headers['x-mpu-action'];
	if (action === 'create') {
		const [pathname, bad] = targetPathname(req, q.get('pathname'));
		req.resume();
		if (bad) return sendError(res, 400, 'bad_request', bad);
		if (!mayWrite(req, res, pathname)) return;
		const uploadId = crypto.randomBytes(16).toString('hex');
		const key = 'mpu/' + crypto.randomBytes(8).toString('hex') + '/' + pathname;
		uploads.set(uploadId, { pathname, key, parts: new Map() });
		return sendJson(res, 200, { key, uploadId });
	}
	if (action === 'upload') {
		const u = uploadOf(req, res);
		if (!u) return;
		const n = Number(req.headers['x-mpu-part-number']);
		if (!Number.isInteger(n) || n < 1 || n > 10000) {
			req.resume();
			return sendError(res, 400, 'bad_request', 'x-mpu-part-number must be 1..10000');
		}
		let got;
		try {
			got = await receive(req);
		} catch {
			return;
		}
		const old = u.parts.get(n);
		if (old) fs.rm(old.file, { force: true }, () => {});
		u.parts.set(n, { etag: '"' + got.md5 + '"', file: got.file, size: got.size });
		return sendJson(res, 200, { etag: '"' + got.md5 + '"' });
	}
	if (action === 'complete') {
		const u = uploadOf(req, res);
		if (!u) return;
		let parts;
		try {
			parts = JSON.parse((await readAll(req)).toString());
		} catch {
			return sendError(res, 400, 'bad_request', 'the body must be [{partNumber, etag}, ...]');
		}
		if (!Array.isArray(parts) || parts.length === 0)
			return sendError(res, 400, 'bad_request', 'the body must be [{partNumber, etag}, ...]');
		parts.sort((a, b) => a.partNumber - b.partNumber);
		for (let i = 0; i < parts.length; i++) {
			const p = u.parts.get(parts[i].partNumber);
			if (!p || p.etag !== parts[i].etag || (i > 0 && parts[i].partNumber === parts[i - 1].partNumber))
				return sendError(res, 400, 'bad_request', 'part ' + parts[i].partNumber + ' was not uploaded ' +
						 'with this etag');
			if (i < parts.length - 1 && p.size < MIN_PART)
				return sendError(res, 400, 'bad_request', 'part ' + parts[i].partNumber + ' is smaller than ' +
						 'the minimum of 5 MiB');
		}
		if (!mayWrite(req, res, u.pathname)) return;
		const tmp = path.join(DIR, 'parts', '.tmp.' + process.pid + '.' + (++seq));
		const md5 = crypto.createHash('md5');
		let size = 0;
		const fd = fs.openSync(tmp, 'w');
		try {
			for (const x of parts) {
				const p = u.parts.get(x.partNumber);
				const data = fs.readFileSync(p.file);
				fs.writeSync(fd, data);
				md5.update(data);
				size += data.length;
			}
		} finally {
			fs.closeSync(fd);
		}
		for (const p of u.parts.values()) fs.rm(p.file, { force: true }, () => {});
		uploads.delete(req.headers['x-mpu-upload-id']);
		return sendJson(res, 200, putResult(u.pathname, commit(req, u.pathname, tmp, size, md5.digest('hex') +
										 '-' + parts.length)));
	}
	req.resume();
	sendError(res, 400, 'bad_request', 'x-mpu-action must be create, upload or complete');
}

async function faults(req, res) {
	if (req.method === 'POST') {
		const body = JSON.parse((await readAll(req)).toString());
		rules = rules.concat(body.rules || []);
		return sendJson(res, 200, { rules: rules.length });
	}
	if (req.method === 'DELETE') {
		rules = [];
		for (const k of Object.keys(injected)) delete injected[k];
	}
	sendJson(res, 200, { injected, requests, blobs: blobs.size, uploads: uploads.size });
}

function authorized(req) {
	const a = req.headers.authorization || '';
	const given = Buffer.from(a.startsWith('Bearer ') ? a.slice(7) : '');
	const want = Buffer.from(TOKEN);
	return given.length === want.length && crypto.timingSafeEqual(given, want);
}

async function api(req, res) {
	const u = new URL(req.url, 'http://x');
	if (u.pathname === '/__faults') return faults(req, res);
	requests++;
	const rule = pickRule('api', req);
	if (rule && applyFault(rule, req, res)) return;
	if (!authorized(req)) {
		req.resume();
		return sendError(res, 403, 'forbidden');
	}
	if (!req.headers['x-api-version']) {
		req.resume();
		return sendError(res, 400, 'bad_request', 'x-api-version is required');
	}
	const q = u.searchParams;
	if (req.method === 'PUT' && u.pathname === '/') return put(req, res, q);
	if (req.method === 'GET' && u.pathname === '/' && q.has('url')) return head(res, q);
	if (req.method === 'GET' && u.pathname === '/') return list(res, q);
	if (req.method === 'POST' && u.pathname === '/delete') return del(req, res);
	if (req.method === 'POST' && u.pathname === '/mpu') return mpu(req, res, q);
	req.resume();
	sendError(res, 404, 'not_found', 'no such API route: ' + req.method + ' ' + u.pathname);
}

/* ---- the blob host ------------------------------------------------------------------ */

function serveBlob(req, res) {
	requests++;
	const rule = pickRule('blob', req);
	if (rule && applyFault(rule, req, res)) return;
	if (req.method !== 'GET' && req.method !== 'HEAD') {
		res.writeHead(405, { 'content-length': 0 });
		return res.end();
	}
	let pathname;
	try {
		pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname.slice(1));
	} catch {
		pathname = '';
	}
	const b = blobs.get(pathname);
	if (!b) {
		res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 9 });
		return res.end('Not Found');
	}
	if (b.access === 'private' && !authorized(req)) {
		res.writeHead(403, { 'content-type': 'text/plain', 'content-length': 9 });
		return res.end('Forbidden');
	}
	let start = 0, end = b.size - 1, status = 200;
	const h = {
		'content-type': b.contentType, etag: b.etag, 'accept-ranges': 'bytes',
		'last-modified': new Date(b.uploadedAt).toUTCString(), 'cache-control': b.cacheControl,
		'content-disposition': disposition(pathname),
	};
	const range = req.headers.range;
	if (range) {
		const m = /^bytes=(\d*)-(\d*)$/.exec(range);
		if (m && m[1] !== '') {
			start = Number(m[1]);
			if (m[2] !== '') end = Math.min(Number(m[2]), b.size - 1);
		} else if (m && m[2] !== '') {
			start = Math.max(0, b.size - Number(m[2]));
		}
		if (!m || start >= b.size || start > end) {
			res.writeHead(416, { 'content-range': 'bytes */' + b.size, 'content-length': 0 });
			return res.end();
		}
		status = 206;
		h['content-range'] = 'bytes ' + start + '-' + end + '/' + b.size;
	}
	const len = b.size === 0 ? 0 : end - start + 1;
	h['content-length'] = len;
	res.writeHead(status, h);
	if (req.method === 'HEAD' || len === 0) return res.end();
	const cut = rule && rule.action === 'cut';
	const stream = fs.createReadStream(b.file, { start, end: cut ? start + Math.floor(len / 2) - 1 : end });
	stream.on('error', () => res.destroy());
	if (cut) {
		stream.on('end', () => res.socket && res.socket.destroy());
		stream.pipe(res, { end: false });
	} else {
		stream.pipe(res);
	}
}

function listen(port, handler) {
	const s = http.createServer((req, res) => {
		Promise.resolve(handler(req, res)).catch((e) => {
			if (!res.headersSent) sendError(res, 500, 'internal_server_error', String(e && e.message));
			else res.destroy();
		});
	});
	s.keepAliveTimeout = 30000;
	s.requestTimeout = 0;
	s.listen(Number(port), '127.0.0.1');
	return s;
}

listen(opt['api-port'], api);
listen(opt['blob-port'], serveBlob);
process.on('SIGTERM', () => process.exit(0));
