'use strict';
/*
 * replica.js - a test replica of the Internet Computer's HTTP interface
 * serving one canister: the stock asset canister (certified assets), as far
 * as src/backend/icp_assets.did describes it.
 *
 *   node tests/icp/replica.js [--port N] [--canister TEXT] [--commit PRINCIPAL]...
 *                             [--controller PRINCIPAL]...
 *
 * Prints one JSON line on stdout once it listens: {port, canister, root_key}.
 *
 * What it implements, as the interface specification says:
 *  - GET  /api/v2/status: CBOR {ic_api_version, root_key (DER), ...}
 *  - POST /api/v{2,3}/canister/<id>/query: signed query, reply with node
 *    signatures (Ed25519, "\x0bic-response" over the response's hash)
 *  - POST /api/v2/canister/<id>/call: 202, then POST /api/v{2,3}/canister/
 *    <id>/read_state for request_status/<request id>/...
 *  - POST /api/v{3,4}/canister/<id>/call: synchronous, 200 with
 *    {status: "replied", certificate}
 *  - certificates: {tree, signature}, the tree pruned to the paths asked
 *    for, signed with a BLS12-381 key (min-sig: signature in G1, public key
 *    in G2) over "\x0dic-state-root" and the tree's root hash
 *  - envelope checks: CBOR with the self-describe tag, the request id
 *    (representation-independent hash), ingress_expiry within [now, now +
 *    5 min] (else 400), at most 2 MiB (else 413), the sender's Ed25519
 *    signature over "\x0aic-request" + request id (else 400), the sender
 *    derived from its key, read_state of another sender's request (403)
 *  - the asset canister: store, create_batch, create_chunk, commit_batch
 *    (atomic), get, get_chunk, list, delete_asset, grant_permission; update
 *    calls need the Commit permission (else the canister traps: reject code
 *    5, IC0503), as the real canister does
 *
 * Test controls (not part of the IC; for fault injection):
 *  POST /_test/grant JSON {principal[, controller]}  give PRINCIPAL the Commit permission
 *                                                 (or make it a controller, as the deployer is)
 *  POST /_test/fail  JSON {status, times, path[, retry_after]}   the next TIMES
 *                          requests whose path contains PATH get STATUS (and Retry-After)
 *                    JSON {cut: true, times, path}   ... are carried out, but their
 *                          answer is cut in half and the connection closed
 *  POST /_test/clear                               forget the faults not yet spent
 *  POST /_test/clock JSON {offset_s}               the replica's clock runs OFFSET_S ahead
 *  GET  /_test/stats                              counters (per method, per endpoint)
 *  GET  /_test/assets                             {key: {length, sha256}} of every asset
 */

const http = require('http');
const crypto = require('crypto');
// the agents' own CBOR library (byte strings of a Buffer decode as Buffers)
const dcbor = require('@dfinity/cbor');
const cbor = { encode: v => Buffer.from(dcbor.encode(v)), decode: b => dcbor.decode(b) };
const { bls12_381: bls } = require('@noble/curves/bls12-381');
const { IDL } = require('@dfinity/candid');
const { Principal } = require('@dfinity/principal');

const MAX_INGRESS = 2 * 1024 * 1024;
const MAX_EXPIRY_NS = 5n * 60n * 1000000000n;
const EXPIRY_SLACK_NS = 30n * 1000000000n;
const BLS_DER_PREFIX = Buffer.from('308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100', 'hex');

// ---- arguments ---------------------------------------------------------------

function parseArgs(argv) {
	const o = { port: 0, canister: 'uxrrr-q7777-77774-qaaaq-cai', commit: [], controller: [] };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i], v = argv[i + 1];
		if (a === '--port') { o.port = Number(v); i++; }
		else if (a === '--canister') { o.canister = v; i++; }
		else if (a === '--commit') { o.commit.push(v); i++; }
		else if (a === '--controller') { o.controller.push(v); i++; }
		else throw new Error('unknown argument ' + a);
	}
	return o;
}

// ---- hashing: request ids and hash trees --------------------------------------

const sha256 = (...parts) => {
	const h = crypto.createHash('sha256');
	for (const p of parts) h.update(p);
	return h.digest();
};
const sha224 = b => crypto.createHash('sha224').update(b).digest();

function leb128(n) {
	let v = BigInt(n);
	const out = [];
	do {
		let b = Number(v & 0x7fn);
		v >>= 7n;
		if (v !== 0n) b |= 0x80;
		out.push(b);
	} while (v !== 0n);
	return Buffer.from(out);
}

function domainSep(s) {
	return Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
}

/* The representation-independent hash of a value (the interface spec's
 * "Representation-independent hashing of structured data"). */
function hashValue(v) {
	if (typeof v === 'string') return sha256(Buffer.from(v, 'utf8'));
	if (typeof v === 'number' || typeof v === 'bigint') return sha256(leb128(v));
	if (v instanceof Uint8Array) return sha256(v);
	if (Array.isArray(v)) return sha256(Buffer.concat(v.map(hashValue)));
	if (v && typeof v === 'object') return hashOfMap(v);
	throw new Error('cannot hash ' + typeof v);
}

function hashOfMap(m) {
	const pairs = Object.entries(m).filter(([, v]) => v !== undefined && v !== null)
		.map(([k, v]) => Buffer.concat([sha256(Buffer.from(k)), hashValue(v)]));
	pairs.sort(Buffer.compare);
	return sha256(Buffer.concat(pairs));
}

const requestId = content => hashOfMap(content);

/* A labeled state tree is a Map of label (Buffer, as a latin1 string key)
 * to a subtree (Map) or a leaf (Buffer).  Hash trees are the spec's CBOR
 * arrays: [0] empty, [1, l, r] fork, [2, label, t] labeled, [3, leaf],
 * [4, hash] pruned. */
function treeHash(t) {
	switch (t[0]) {
	case 0: return sha256(domainSep('ic-hashtree-empty'));
	case 1: return sha256(domainSep('ic-hashtree-fork'), treeHash(t[1]), treeHash(t[2]));
	case 2: return sha256(domainSep('ic-hashtree-labeled'), t[1], treeHash(t[2]));
	case 3: return sha256(domainSep('ic-hashtree-leaf'), t[1]);
	case 4: return t[1];
	}
	throw new Error('bad tree');
}

function forks(nodes) {
	if (nodes.length === 0) return [0];
	if (nodes.length === 1) return nodes[0];
	const mid = nodes.length >> 1;
	return [1, forks(nodes.slice(0, mid)), forks(nodes.slice(mid))];
}

/* The hash tree of STATE, pruned to PATHS (lists of Buffers; ALL: keep
 * everything): every subtree a path reaches in full is kept, the rest
 * become pruned hashes. */
const ALL = null;
function witness(state, paths) {
	if (Buffer.isBuffer(state)) return [3, state];
	const labels = [...state.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
	return forks(labels.map(l => {
		const lb = Buffer.from(l, 'latin1');
		const child = state.get(l);
		if (paths === ALL) return [2, lb, witness(child, ALL)];
		const want = paths.filter(p => p.length > 0 && Buffer.compare(p[0], lb) === 0);
		if (want.some(p => p.length === 1)) return [2, lb, witness(child, ALL)];
		if (want.length === 0) return [4, prunedHash(lb, child)];
		return [2, lb, witness(child, want.map(p => p.slice(1)))];
	}));
}

/* The hash of the labeled node (LB, CHILD), kept for subtrees that never
 * change (a request's final status): without it every certificate would
 * rehash every request ever made. */
const memo = new WeakMap();
function prunedHash(lb, child) {
	if (!Buffer.isBuffer(child) && memo.has(child)) return memo.get(child);
	const h = treeHash([2, lb, witness(child, ALL)]);
	if (!Buffer.isBuffer(child) && child.frozen) memo.set(child, h);
	return h;
}

// ---- keys -----------------------------------------------------------------------

function selfAuthenticating(der) {
	return Buffer.concat([sha224(der), Buffer.from([2])]);
}

function ed25519Keypair() {
	const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
	return { der: publicKey.export({ format: 'der', type: 'spki' }), privateKey };
}

// ---- the asset canister -----------------------------------------------------------

const T = (() => {
	const Key = IDL.Text;
	const CreateAssetArguments = IDL.Record({
		key: Key, content_type: IDL.Text, max_age: IDL.Opt(IDL.Nat64),
		headers: IDL.Opt(IDL.Vec(IDL.Tuple(IDL.Text, IDL.Text))),
		enable_aliasing: IDL.Opt(IDL.Bool), allow_raw_access: IDL.Opt(IDL.Bool),
	});
	const SetAssetContentArguments = IDL.Record({
		key: Key, content_encoding: IDL.Text, chunk_ids: IDL.Vec(IDL.Nat), sha256: IDL.Opt(IDL.Vec(IDL.Nat8)),
	});
	const BatchOperationKind = IDL.Variant({
		CreateAsset: CreateAssetArguments,
		SetAssetContent: SetAssetContentArguments,
		UnsetAssetContent: IDL.Record({ key: Key, content_encoding: IDL.Text }),
		DeleteAsset: IDL.Record({ key: Key }),
		Clear: IDL.Record({}),
	});
	const Permission = IDL.Variant({ Commit: IDL.Null, ManagePermissions: IDL.Null, Prepare: IDL.Null });
	return {
		get: [[IDL.Record({ key: Key, accept_encodings: IDL.Vec(IDL.Text) })],
			[IDL.Record({ content: IDL.Vec(IDL.Nat8), content_type: IDL.Text, content_encoding: IDL.Text,
				sha256: IDL.Opt(IDL.Vec(IDL.Nat8)), total_length: IDL.Nat })], 'query'],
		get_chunk: [[IDL.Record({ key: Key, content_encoding: IDL.Text, index: IDL.Nat, sha256: IDL.Opt(IDL.Vec(IDL.Nat8)) })],
			[IDL.Record({ content: IDL.Vec(IDL.Nat8) })], 'query'],
		list: [[IDL.Record({})], [IDL.Vec(IDL.Record({
			key: Key, content_type: IDL.Text,
			encodings: IDL.Vec(IDL.Record({ content_encoding: IDL.Text, sha256: IDL.Opt(IDL.Vec(IDL.Nat8)),
				length: IDL.Nat, modified: IDL.Int })),
		}))], 'query'],
		store: [[IDL.Record({ key: Key, content_type: IDL.Text, content_encoding: IDL.Text,
			content: IDL.Vec(IDL.Nat8), sha256: IDL.Opt(IDL.Vec(IDL.Nat8)) })], [], 'update'],
		create_batch: [[IDL.Record({})], [IDL.Record({ batch_id: IDL.Nat })], 'update'],
		create_chunk: [[IDL.Record({ batch_id: IDL.Nat, content: IDL.Vec(IDL.Nat8) })],
			[IDL.Record({ chunk_id: IDL.Nat })], 'update'],
		commit_batch: [[IDL.Record({ batch_id: IDL.Nat, operations: IDL.Vec(BatchOperationKind) })], [], 'update'],
		delete_asset: [[IDL.Record({ key: Key })], [], 'update'],
		grant_permission: [[IDL.Record({ to_principal: IDL.Principal, permission: Permission })], [], 'update'],
	};
})();

class Trap extends Error {}

class AssetCanister {
	constructor(commit, controllers) {
		this.assets = new Map();	// key -> {content_type, encodings: Map(enc -> {chunks, sha256, length, modified})}
		this.batches = new Map();	// id -> {chunks: Map(id -> Buffer), expires}
		this.chunks = new Map();	// chunk id -> {batch, content}
		this.nextBatch = 1n;
		this.nextChunk = 1n;
		this.commit = new Set(commit);
		this.controllers = new Set(controllers);
		this.manage = new Set();
	}

	mayCommit(caller) { return this.commit.has(caller) || this.controllers.has(caller); }

	/* Runs METHOD; returns the reply bytes or throws Trap.  Updates are
	 * atomic: a trap leaves the state as it was (the IC rolls back). */
	run(method, caller, argBytes, kind) {
		const sig = T[method];
		if (!sig) throw new Trap('Canister has no ' + kind + ' method \'' + method + '\'');
		if (kind === 'query' && sig[2] !== 'query') throw new Trap('Canister has no query method \'' + method + '\'');
		let args;
		try {
			args = IDL.decode(sig[0], new Uint8Array(argBytes)); // a copy: candid reads the whole ArrayBuffer
		} catch (e) {
			throw new Trap('failed to decode call arguments: ' + e.message);
		}
		const reply = this[method](caller, ...args);
		return Buffer.from(IDL.encode(sig[1], reply === undefined ? [] : [reply]));
	}

	needCommit(caller) {
		if (!this.mayCommit(caller)) throw new Trap('Caller does not have Commit permission');
	}

	setContent(assets, key, enc, chunks, sha) {
		const a = assets.get(key);
		if (!a) throw new Trap('asset not found');
		const all = Buffer.concat(chunks);
		const h = sha256(all);
		if (sha && Buffer.compare(Buffer.from(sha), h) !== 0) throw new Trap('sha256 mismatch');
		a.encodings.set(enc, { chunks: chunks.length ? chunks : [Buffer.alloc(0)], sha256: h, length: all.length,
			modified: BigInt(Date.now()) * 1000000n });
	}

	store(caller, a) {
		this.needCommit(caller);
		if (!this.assets.has(a.key)) this.assets.set(a.key, { content_type: a.content_type, encodings: new Map() });
		const asset = this.assets.get(a.key);
		asset.content_type = a.content_type;
		this.setContent(this.assets, a.key, a.content_encoding, [Buffer.from(a.content)], a.sha256[0]);
	}

	create_batch(caller) {
		this.needCommit(caller);
		const id = this.nextBatch++;
		this.batches.set(id, { chunks: [] });
		return { batch_id: id };
	}

	create_chunk(caller, a) {
		this.needCommit(caller);
		const b = this.batches.get(a.batch_id);
		if (!b) throw new Trap('batch not found');
		const id = this.nextChunk++;
		this.chunks.set(id, { batch: a.batch_id, content: Buffer.from(a.content) });
		b.chunks.push(id);
		return { chunk_id: id };
	}

	commit_batch(caller, a) {
		this.needCommit(caller);
		if (!this.batches.has(a.batch_id)) throw new Trap('batch not found');
		// apply to a copy: a trap leaves nothing half done
		const assets = new Map([...this.assets].map(([k, v]) => [k, { content_type: v.content_type, encodings: new Map(v.encodings) }]));
		for (const op of a.operations) {
			const [kind, arg] = Object.entries(op)[0];
			if (kind === 'CreateAsset') {
				const cur = assets.get(arg.key);
				if (cur && cur.content_type !== arg.content_type) throw new Trap('create_asset: content type mismatch');
				if (!cur) assets.set(arg.key, { content_type: arg.content_type, encodings: new Map() });
			} else if (kind === 'SetAssetContent') {
				const chunks = arg.chunk_ids.map(id => {
					const c = this.chunks.get(id);
					if (!c || c.batch !== a.batch_id) throw new Trap('chunk not found');
					return c.content;
				});
				this.setContent(assets, arg.key, arg.content_encoding, chunks, arg.sha256[0]);
			} else if (kind === 'UnsetAssetContent') {
				const cur = assets.get(arg.key);
				if (!cur) throw new Trap('asset not found');
				cur.encodings.delete(arg.content_encoding);
			} else if (kind === 'DeleteAsset') {
				assets.delete(arg.key);
			} else if (kind === 'Clear') {
				assets.clear();
			}
		}
		this.assets = assets;
		for (const id of this.batches.get(a.batch_id).chunks) this.chunks.delete(id);
		this.batches.delete(a.batch_id);
	}

	delete_asset(caller, a) {
		this.needCommit(caller);
		this.assets.delete(a.key);
	}

	grant_permission(caller, a) {
		if (!this.controllers.has(caller) && !this.manage.has(caller))
			throw new Trap('Caller does not have ManagePermissions permission and is not a controller.');
		const p = a.to_principal.toText();
		if ('Commit' in a.permission) this.commit.add(p);
		if ('ManagePermissions' in a.permission) this.manage.add(p);
	}

	encoding(key, encs) {
		const a = this.assets.get(key);
		if (!a) throw new Trap('asset not found');
		for (const e of encs) {
			const enc = a.encodings.get(e);
			if (enc) return [a, e, enc];
		}
		throw new Trap('no such encoding');
	}

	get(caller, a) {
		const [asset, e, enc] = this.encoding(a.key, a.accept_encodings);
		return { content: enc.chunks[0], content_type: asset.content_type, content_encoding: e,
			sha256: [enc.sha256], total_length: BigInt(enc.length) };
	}

	get_chunk(caller, a) {
		const [, , enc] = this.encoding(a.key, [a.content_encoding]);
		if (a.sha256.length && Buffer.compare(Buffer.from(a.sha256[0]), enc.sha256) !== 0) throw new Trap('sha256 mismatch');
		if (a.index >= BigInt(enc.chunks.length)) throw new Trap('chunk index out of bounds');
		return { content: enc.chunks[Number(a.index)] };
	}

	list() {
		return [...this.assets].map(([key, a]) => ({
			key, content_type: a.content_type,
			encodings: [...a.encodings].map(([e, enc]) => ({ content_encoding: e, sha256: [enc.sha256],
				length: BigInt(enc.length), modified: enc.modified })),
		}));
	}
}

// ---- the replica ----------------------------------------------------------------------

class Replica {
	constructor(opts) {
		this.canisterText = opts.canister;
		this.canister = Buffer.from(Principal.fromText(opts.canister).toUint8Array());
		this.blsSecret = bls.utils.randomPrivateKey();
		this.rootKey = Buffer.concat([BLS_DER_PREFIX, Buffer.from(bls.shortSignatures.getPublicKey(this.blsSecret).toBytes())]);
		this.subnet = selfAuthenticating(this.rootKey);
		this.node = ed25519Keypair();
		this.nodeId = selfAuthenticating(this.node.der);
		this.canisterApp = new AssetCanister(opts.commit, opts.controller);
		this.requests = new Map();	// request id hex -> {sender, status, reply | reject}
		this.faults = [];
		this.clockOffsetMs = 0;
		this.stats = { calls: {}, queries: {}, rejected: {}, endpoints: {} };
	}

	now() { return (BigInt(Date.now()) + BigInt(this.clockOffsetMs)) * 1000000n; }

	state() {
		const L = s => Buffer.from(s).toString('latin1');
		const rs = new Map();
		const forget = Date.now() - 6 * 60 * 1000;	// the IC forgets a request some minutes after its expiry
		for (const [id, r] of this.requests) {
			if (r.at < forget) {
				this.requests.delete(id);
				continue;
			}
			if (!r.node) {
				const m = new Map([[L('status'), Buffer.from(r.status)]]);
				if (r.status === 'replied') m.set(L('reply'), r.reply);
				if (r.status === 'rejected') {
					m.set(L('reject_code'), leb128(r.reject_code));
					m.set(L('reject_message'), Buffer.from(r.reject_message));
					m.set(L('error_code'), Buffer.from(r.error_code));
				}
				m.frozen = true;	// final: its hash may be kept
				r.node = m;
			}
			rs.set(Buffer.from(id, 'hex').toString('latin1'), r.node);
		}
		const ranges = Buffer.from(cbor.encode([[this.canister, this.canister]]));
		const subnet = new Map([[L('public_key'), this.rootKey], [L('canister_ranges'), ranges],
			[L('node'), new Map([[this.nodeId.toString('latin1'), new Map([[L('public_key'), this.node.der]])]])]]);
		return new Map([
			[L('time'), leb128(this.now())],
			[L('request_status'), rs],
			[L('subnet'), new Map([[this.subnet.toString('latin1'), subnet]])],
		]);
	}

	certificate(paths) {
		const tree = witness(this.state(), paths.concat([[Buffer.from('time')]]));
		const msg = Buffer.concat([domainSep('ic-state-root'), treeHash(tree)]);
		const sig = bls.shortSignatures.sign(bls.shortSignatures.hash(msg), this.blsSecret);
		return Buffer.from(cbor.encode({ tree, signature: Buffer.from(sig.toBytes()) }));
	}

	/* Checks an envelope: returns {content, sender (text), rid} or throws
	 * [status, text]. */
	checkEnvelope(body, wantType) {
		let env;
		try {
			env = cbor.decode(body);
		} catch (e) {
			throw [400, 'Could not parse body as read request: ' + e.message];
		}
		const c = env && env.content;
		if (!c || c.request_type !== wantType) throw [400, 'Could not parse body as ' + wantType + ' request'];
		const exp = BigInt(c.ingress_expiry ?? 0);
		const now = this.now();
		if (exp < now || exp > now + MAX_EXPIRY_NS + EXPIRY_SLACK_NS)
			throw [400, 'Invalid request expiry: Specified ingress_expiry not within expected range: Minimum allowed expiry: ' +
				now + ', Maximum allowed expiry: ' + (now + MAX_EXPIRY_NS + EXPIRY_SLACK_NS) + ', Provided expiry: ' + exp];
		const sender = Buffer.from(c.sender);
		const content = {};
		for (const [k, v] of Object.entries(c)) content[k] = v instanceof Uint8Array ? Buffer.from(v) : v;
		if (content.ingress_expiry !== undefined) content.ingress_expiry = BigInt(content.ingress_expiry);
		if (content.nonce !== undefined) content.nonce = Buffer.from(content.nonce);
		const rid = requestId(content);
		const anonymous = sender.length === 1 && sender[0] === 4;
		if (!anonymous) {
			if (!env.sender_pubkey || !env.sender_sig) throw [400, 'Invalid signature: missing sender_pubkey or sender_sig'];
			if (env.sender_delegation) throw [400, 'Invalid delegation: delegations are not supported by this test replica'];
			const der = Buffer.from(env.sender_pubkey);
			if (Buffer.compare(selfAuthenticating(der), sender) !== 0)
				throw [400, 'Invalid signature: sender does not match the public key'];
			let key;
			try {
				key = crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
			} catch (e) {
				throw [400, 'Invalid signature: unsupported public key'];
			}
			if (key.asymmetricKeyType !== 'ed25519') throw [400, 'Invalid signature: only Ed25519 keys are supported here'];
			const ok = crypto.verify(null, Buffer.concat([domainSep('ic-request'), rid]), key, Buffer.from(env.sender_sig));
			if (!ok) throw [400, 'Invalid signature: Invalid basic signature: Ed25519 signature could not be verified'];
		}
		if (c.canister_id && Buffer.compare(Buffer.from(c.canister_id), this.canister) !== 0 && wantType !== 'read_state')
			throw [400, 'Specified CanisterId ' + Principal.fromUint8Array(Buffer.from(c.canister_id)).toText() + ' does not match effective canister id in URL'];
		return { content, sender: Principal.fromUint8Array(sender).toText(), rid, senderBytes: sender };
	}

	execute(content, sender, kind) {
		try {
			const reply = this.canisterApp.run(content.method_name, sender, content.arg, kind);
			return { status: 'replied', reply };
		} catch (e) {
			if (!(e instanceof Trap)) throw e;
			return {
				status: 'rejected', reject_code: 5, error_code: 'IC0503',
				reject_message: 'Error from Canister ' + this.canisterText + ': Canister called `ic0.trap` with message: \'' +
					e.message + '\'.',
			};
		}
	}

	handleQuery(body) {
		const { content, sender, rid } = this.checkEnvelope(body, 'query');
		if (process.env.ICP_DEBUG) console.error(content, body.toString('hex'));
		this.stats.queries[content.method_name] = (this.stats.queries[content.method_name] || 0) + 1;
		const r = this.execute(content, sender, 'query');
		const timestamp = this.now();
		const out = r.status === 'replied'
			? { status: 'replied', reply: { arg: r.reply } }
			: { status: 'rejected', reject_code: r.reject_code, reject_message: r.reject_message, error_code: r.error_code };
		const hashed = r.status === 'replied'
			? { status: 'replied', reply: { arg: r.reply }, timestamp, request_id: rid }
			: { status: 'rejected', reject_code: r.reject_code, reject_message: r.reject_message, error_code: r.error_code,
				timestamp, request_id: rid };
		const sig = crypto.sign(null, Buffer.concat([domainSep('ic-response'), hashOfMap(hashed)]), this.node.privateKey);
		out.signatures = [{ timestamp, signature: sig, identity: this.nodeId }];
		if (r.status === 'rejected') this.stats.rejected[content.method_name] = (this.stats.rejected[content.method_name] || 0) + 1;
		return [200, cbor.encode(out)];
	}

	handleCall(body, sync) {
		const { content, sender, rid, senderBytes } = this.checkEnvelope(body, 'call');
		const key = rid.toString('hex');
		if (!this.requests.has(key)) {	// a message is executed once
			this.stats.calls[content.method_name] = (this.stats.calls[content.method_name] || 0) + 1;
			const r = this.execute(content, sender, 'update');
			r.sender = senderBytes;
			r.at = Date.now();
			if (r.status === 'rejected') this.stats.rejected[content.method_name] = (this.stats.rejected[content.method_name] || 0) + 1;
			this.requests.set(key, r);
		}
		if (!sync) return [202, Buffer.alloc(0)];
		const cert = this.certificate([[Buffer.from('request_status'), rid]]);
		return [200, cbor.encode({ status: 'replied', certificate: cert })];
	}

	handleReadState(body) {
		const { content, senderBytes } = this.checkEnvelope(body, 'read_state');
		const paths = (content.paths || []).map(p => p.map(l => Buffer.from(l)));
		for (const p of paths) {
			if (p.length >= 2 && p[0].toString() === 'request_status') {
				const r = this.requests.get(p[1].toString('hex'));
				if (r && Buffer.compare(r.sender, senderBytes) !== 0)
					throw [403, 'Request IDs must be for requests signed by the caller.'];
			}
		}
		return [200, cbor.encode({ certificate: this.certificate(paths) })];
	}

	/* [status, body, retry-after, cut]: CUT sends half the body, then
	 * closes the connection (the request was carried out). */
	route(method, path, body) {
		const f = this.faults.find(x => x.times > 0 && path.startsWith('/api/') && path.includes(x.path || ''));
		if (f) {
			f.times--;
			if (!f.cut) return [f.status, Buffer.from('injected failure\n'), f.retry_after];
			const [st, out] = this.route(method, path, body);
			return [st, out, undefined, true];
		}
		if (method === 'GET' && path === '/api/v2/status')
			return [200, cbor.encode({ ic_api_version: '0.18.0', root_key: this.rootKey, impl_version: 'mvaultfs-test-replica' })];
		if (method === 'GET' && path === '/_test/stats') return [200, Buffer.from(JSON.stringify(this.stats))];
		if (method === 'GET' && path === '/_test/assets') {
			const out = {};
			for (const [k, a] of this.canisterApp.assets) {
				const e = a.encodings.get('identity');
				if (e) out[k] = { length: e.length, sha256: e.sha256.toString('hex') };
			}
			return [200, Buffer.from(JSON.stringify(out))];
		}
		if (method === 'POST' && path === '/_test/grant') {
			const g = JSON.parse(body.toString());
			(g.controller ? this.canisterApp.controllers : this.canisterApp.commit).add(g.principal);
			return [200, Buffer.from('ok\n')];
		}
		if (method === 'POST' && path === '/_test/clear') {
			this.faults = [];
			return [200, Buffer.from('ok\n')];
		}
		if (method === 'POST' && path === '/_test/clock') {
			this.clockOffsetMs = JSON.parse(body.toString()).offset_s * 1000;
			return [200, Buffer.from('ok\n')];
		}
		if (method === 'POST' && path === '/_test/fail') {
			this.faults.push(JSON.parse(body.toString()));
			return [200, Buffer.from('ok\n')];
		}
		const m = /^\/api\/(v[234])\/canister\/([^/]+)\/(query|call|read_state)$/.exec(path);
		if (!m || method !== 'POST') return [404, Buffer.from('not found\n')];
		const [, ver, ecid, what] = m;
		this.stats.endpoints[ver + '/' + what] = (this.stats.endpoints[ver + '/' + what] || 0) + 1;
		let ecidBytes;
		try {
			ecidBytes = Buffer.from(Principal.fromText(ecid).toUint8Array());
		} catch (e) {
			return [400, Buffer.from('Invalid effective canister id: ' + ecid + '\n')];
		}
		if (Buffer.compare(ecidBytes, this.canister) !== 0)
			return [400, Buffer.from('Canister ' + ecid + ' not found\n')];
		if (body.length > MAX_INGRESS)
			return [413, Buffer.from('Request is too large. Message byte size ' + body.length + ' is larger than the max allowed ' + MAX_INGRESS + '.\n')];
		try {
			if (what === 'query' && (ver === 'v2' || ver === 'v3')) return this.handleQuery(body);
			if (what === 'read_state' && (ver === 'v2' || ver === 'v3')) return this.handleReadState(body);
			if (what === 'call' && ver === 'v2') return this.handleCall(body, false);
			if (what === 'call') return this.handleCall(body, true);
		} catch (e) {
			if (Array.isArray(e)) return [e[0], Buffer.from(e[1] + '\n')];
			throw e;
		}
		return [404, Buffer.from('not found\n')];
	}
}

function main() {
	const opts = parseArgs(process.argv.slice(2));
	const rep = new Replica(opts);
	const server = http.createServer((req, res) => {
		const parts = [];
		let size = 0, over = false;
		req.on('data', d => {
			size += d.length;
			if (size > MAX_INGRESS + 65536) over = true;	// refused below; do not keep it
			else parts.push(d);
		});
		req.on('end', () => {
			let status, out, retryAfter, cut;
			try {
				[status, out, retryAfter, cut] = over ? [413, Buffer.from('Request is too large.\n')]
					: rep.route(req.method, req.url.split('?')[0], Buffer.concat(parts));
			} catch (e) {
				status = 500;
				out = Buffer.from('replica error: ' + (e && e.stack) + '\n');
			}
			const cborOut = status >= 200 && status < 300 && req.url.startsWith('/api/');
			const headers = { 'content-type': cborOut ? 'application/cbor' : 'text/plain', 'content-length': out.length };
			if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
			res.writeHead(status, headers);
			if (cut) {
				res.write(out.subarray(0, out.length >> 1), () => res.socket.destroy());
				return;
			}
			res.end(out);
		});
	});
	server.keepAliveTimeout = 30000;
	server.listen(opts.port, '127.0.0.1', () => {
		process.stdout.write(JSON.stringify({ port: server.address().port, canister: opts.canister,
			root_key: rep.rootKey.toString('hex') }) + '\n');
	});
	process.on('SIGTERM', () => process.exit(0));
}

if (require.main === module) main();
module.exports = { requestId, hashOfMap, treeHash, witness, leb128, Replica };
