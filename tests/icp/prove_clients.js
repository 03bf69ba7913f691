'use strict';
/*
 * prove_clients.js - the official Internet Computer clients against the test
 * replica, before anything of ours is trusted to it.
 *
 *   node tests/icp/prove_clients.js URL CANISTER COMMIT_PEM OTHER_PEM
 *
 * COMMIT_PEM controls the canister and holds the Commit permission,
 * OTHER_PEM does not (both Ed25519 PKCS#8 PEM files).  Prints one line per proof; exits 1 on the first
 * failure.
 *
 *  1. @icp-sdk/core 6.1.0: HttpAgent fetching the root key from /api/v2/status,
 *     an actor making update calls (v4 synchronous call, every certificate
 *     BLS-verified) and queries (node signatures checked against the keys
 *     it reads from the subnet's certified state), and a rejected call.
 *  2. The same agent against a replica without the v4 call (404): it falls
 *     back to the v2 call and read_state polling.
 *     Then the README's grant: the controller calls grant_permission
 *     (record {to_principal; permission = variant {Commit}}) for a new
 *     identity, whose store was refused before and is taken after.
 *  3. What the replica refuses, with envelopes made here: a wrong signature,
 *     a sender that is not its key's, an expired request (400), a message
 *     over 2 MiB (413).
 *  4. @dfinity/assets 3.4.3 (on @dfinity/agent 3.4.3, v3 call and v2
 *     query/read_state): a small file (store) and one over 2 MiB
 *     (create_batch, create_chunk, commit_batch), read back (get,
 *     get_chunk), listed, deleted.
 */

const fs = require('fs');
const crypto = require('crypto');
const core = require('@icp-sdk/core/agent');
const coreIdentity = require('@icp-sdk/core/identity');
const { IDL: CoreIDL } = require('@icp-sdk/core/candid');
const dagent = require('@dfinity/agent');
const didentity = require('@dfinity/identity');
const { AssetManager } = require('@dfinity/assets');

const [url, canisterId, commitPem, otherPem] = process.argv.slice(2);

function seedOf(pemFile) {
	const der = crypto.createPrivateKey(fs.readFileSync(pemFile)).export({ format: 'der', type: 'pkcs8' });
	return new Uint8Array(der.subarray(der.length - 32));
}

const IDL_STORE = CoreIDL.Record({ key: CoreIDL.Text, content_type: CoreIDL.Text, content_encoding: CoreIDL.Text,
	content: CoreIDL.Vec(CoreIDL.Nat8), sha256: CoreIDL.Opt(CoreIDL.Vec(CoreIDL.Nat8)) });

const idlFactory = ({ IDL }) => IDL.Service({
	store: IDL.Func([IDL.Record({ key: IDL.Text, content_type: IDL.Text, content_encoding: IDL.Text,
		content: IDL.Vec(IDL.Nat8), sha256: IDL.Opt(IDL.Vec(IDL.Nat8)) })], [], []),
	get: IDL.Func([IDL.Record({ key: IDL.Text, accept_encodings: IDL.Vec(IDL.Text) })],
		[IDL.Record({ content: IDL.Vec(IDL.Nat8), content_type: IDL.Text, content_encoding: IDL.Text,
			sha256: IDL.Opt(IDL.Vec(IDL.Nat8)), total_length: IDL.Nat })], ['query']),
	delete_asset: IDL.Func([IDL.Record({ key: IDL.Text })], [], []),
});

const sha = b => crypto.createHash('sha256').update(b).digest('hex');
function check(cond, what) {
	if (!cond) {
		console.log('FAIL ' + what);
		process.exit(1);
	}
	console.log('ok ' + what);
}

async function rejects(p, re, what) {
	try {
		await p;
	} catch (e) {
		// The reject's own words (the agent's message of a reject found by
		// polling cannot be rendered: its call context lacks the target).
		let text;
		try {
			text = (e && e.code && e.code.rejectMessage) || String(e && e.message);
		} catch (e2) {
			text = String(e2);
		}
		check(re.test(text), what + ' (' + text.split('\n')[0].slice(0, 140) + ')');
		return;
	}
	check(false, what + ': it succeeded');
}

async function proveCore() {
	const identity = coreIdentity.Ed25519KeyIdentity.fromSecretKey(seedOf(commitPem));
	const other = coreIdentity.Ed25519KeyIdentity.fromSecretKey(seedOf(otherPem));
	for (const callSync of [true, false]) {
		await control(callSync ? '/_test/clear' : '/_test/fail', { status: 404, times: 1000, path: '/api/v4/' });
		const agent = await core.HttpAgent.create({ host: url, identity, shouldFetchRootKey: true, retryTimes: 0 });
		const actor = core.Actor.createActor(idlFactory, { agent, canisterId, callSync });
		const bytes = crypto.randomBytes(5000);
		const how = callSync ? 'v4 sync call' : 'no v4 (404): v2 call + read_state';
		await actor.store({ key: '/core/a.bin', content_type: 'application/octet-stream', content_encoding: 'identity',
			content: bytes, sha256: [] });
		const got = await actor.get({ key: '/core/a.bin', accept_encodings: ['identity'] });
		check(sha(got.content) === sha(bytes) && got.total_length === 5000n,
			'@icp-sdk/core ' + how + ': store (certificate BLS-verified), then a signed query reads it back');
		await rejects(actor.get({ key: '/core/none', accept_encodings: ['identity'] }), /asset not found/,
			'@icp-sdk/core: a query the canister rejects');
		const otherAgent = await core.HttpAgent.create({ host: url, identity: other, shouldFetchRootKey: true, retryTimes: 0 });
		const otherActor = core.Actor.createActor(idlFactory, { agent: otherAgent, canisterId, callSync });
		if (callSync) {
			await rejects(otherActor.store({ key: '/core/b.bin', content_type: 'x', content_encoding: 'identity',
				content: [1], sha256: [] }), /Commit permission/, '@icp-sdk/core ' + how + ': an identity without Commit is rejected');
		} else {
			// The actor cannot render a reject it learnt by polling (its error's
			// call context lacks the target: a TypeError inside the agent), so
			// read the certified status the way the agent's own poller does.
			const arg = CoreIDL.encode([IDL_STORE], [{ key: '/core/b.bin', content_type: 'x', content_encoding: 'identity',
				content: [1], sha256: [] }]);
			const { requestId } = await otherAgent.call(canisterId, { methodName: 'store', arg, effectiveCanisterId: canisterId,
				callSync: false });
			const path = [new TextEncoder().encode('request_status'), requestId];
			const st = await otherAgent.readState(canisterId, { paths: [path] });
			const look = l => Buffer.from(st.verifiedCertificate.lookup_path([...path, l]).value || []).toString();
			check(look('status') === 'rejected' && /Commit permission/.test(look('reject_message')),
				'@icp-sdk/core ' + how + ': an identity without Commit is rejected (read_state, BLS-verified: ' +
				look('reject_message').slice(0, 80) + ')');
		}
		await actor.delete_asset({ key: '/core/a.bin' });
		await rejects(actor.get({ key: '/core/a.bin', accept_encodings: ['identity'] }), /asset not found/,
			'@icp-sdk/core ' + how + ': delete_asset');
	}
	await control('/_test/clear', {});
	await proveGrant(identity);
	// A replica signing with another root key than the one the agent trusts.
	const wrong = await core.HttpAgent.create({ host: url, identity, shouldFetchRootKey: false, retryTimes: 0 });
	const wrongActor = core.Actor.createActor(idlFactory, { agent: wrong, canisterId });
	await rejects(wrongActor.store({ key: '/core/c.bin', content_type: 'x', content_encoding: 'identity', content: [1], sha256: [] }),
		/ignature|Certificate|certificate|rust|not authorized|Invalid/,
		'@icp-sdk/core: a certificate under the wrong (mainnet) root key is refused');
}

async function proveGrant(controller) {
	const grantIdl = ({ IDL }) => IDL.Service({
		grant_permission: IDL.Func([IDL.Record({ to_principal: IDL.Principal,
			permission: IDL.Variant({ Commit: IDL.Null, ManagePermissions: IDL.Null, Prepare: IDL.Null }) })], [], []),
	});
	const fresh = coreIdentity.Ed25519KeyIdentity.generate();
	const mk = async id => core.Actor.createActor(idlFactory, { canisterId,
		agent: await core.HttpAgent.create({ host: url, identity: id, shouldFetchRootKey: true, retryTimes: 0 }) });
	const freshActor = await mk(fresh);
	const put = () => freshActor.store({ key: '/core/granted.bin', content_type: 'x', content_encoding: 'identity',
		content: [7], sha256: [] });
	await rejects(put(), /Commit permission/, '@icp-sdk/core: a new identity may not store');
	const admin = core.Actor.createActor(grantIdl, { canisterId,
		agent: await core.HttpAgent.create({ host: url, identity: controller, shouldFetchRootKey: true, retryTimes: 0 }) });
	await admin.grant_permission({ to_principal: fresh.getPrincipal(), permission: { Commit: null } });
	await put();
	await freshActor.delete_asset({ key: '/core/granted.bin' });
	check(true, '@icp-sdk/core: grant_permission (the README\'s command) lets it store');
}

async function control(path, body) {
	const r = await fetch(url + path, { method: 'POST', body: JSON.stringify(body) });
	check(r.ok, 'replica control ' + path);
}

async function proveAssets() {
	const identity = didentity.Ed25519KeyIdentity.fromSecretKey(seedOf(commitPem));
	const agent = await dagent.HttpAgent.create({ host: url, identity, shouldFetchRootKey: true, retryTimes: 0 });
	const am = new AssetManager({ canisterId, agent });
	const small = crypto.randomBytes(12345);
	const big = crypto.randomBytes(5 * 1024 * 1024 + 77);
	const k1 = await am.store(small, { fileName: 'small.bin', path: '/assets' });
	const k2 = await am.store(big, { fileName: 'big.bin', path: '/assets' });
	check(k1 === '/assets/small.bin' && k2 === '/assets/big.bin', '@dfinity/assets: store (small) and batch upload (5 MiB)');
	const a1 = await am.get(k1);
	const a2 = await am.get(k2);
	check(sha(await a1.toUint8Array()) === sha(small), '@dfinity/assets: the small file reads back (get)');
	check(sha(await a2.toUint8Array()) === sha(big) && a2.length === big.length,
		'@dfinity/assets: the 5 MiB file reads back (get + get_chunk)');
	check(a2.sha256 && Buffer.from(a2.sha256).toString('hex') === sha(big) && await a2.verifySha256(big),
		'@dfinity/assets: the canister kept the sha256 the client sent (verifySha256)');
	const listed = (await am.list()).map(x => x.key).sort();
	check(listed.includes(k1) && listed.includes(k2), '@dfinity/assets: list');
	await am.delete(k1);
	await am.delete(k2);
	check((await am.list()).every(x => x.key !== k1 && x.key !== k2), '@dfinity/assets: delete');
}

async function post(path, envelope) {
	const body = Buffer.from(require('@dfinity/cbor').encodeWithSelfDescribedTag(envelope));
	const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body });
	return [r.status, await r.text()];
}

async function proveRefusals() {
	const { requestId } = require('./replica.js');
	const { Principal } = require('@dfinity/principal');
	const key = crypto.createPrivateKey(fs.readFileSync(commitPem));
	const other = crypto.createPrivateKey(fs.readFileSync(otherPem));
	const der = crypto.createPublicKey(key).export({ format: 'der', type: 'spki' });
	const sender = Buffer.concat([crypto.createHash('sha224').update(der).digest(), Buffer.from([2])]);
	const now = BigInt(Date.now()) * 1000000n;
	const content = (extra) => ({ request_type: 'call', canister_id: Buffer.from(Principal.fromText(canisterId).toUint8Array()),
		method_name: 'delete_asset', arg: Buffer.from('4449444c016c019f93c602710100022f78', 'hex'),	// delete_asset({key="/x"})
		sender, ingress_expiry: now + 60n * 1000000000n, nonce: crypto.randomBytes(8), ...extra });
	const sign = (c, k) => crypto.sign(null, Buffer.concat([Buffer.from('\x0aic-request', 'latin1'), requestId(c)]), k);
	const path = '/api/v3/canister/' + canisterId + '/call';
	let c = content({});
	let [st] = await post(path, { content: c, sender_pubkey: der, sender_sig: sign(c, key) });
	check(st === 200, 'replica: a well-signed call of ours is taken (' + st + ')');
	c = content({});
	let [st2, text] = await post(path, { content: c, sender_pubkey: der, sender_sig: sign(c, other) });
	check(st2 === 400 && /signature/.test(text), 'replica: a wrong signature is refused (400)');
	c = content({ ingress_expiry: now - 1000000000n });
	[st2, text] = await post(path, { content: c, sender_pubkey: der, sender_sig: sign(c, key) });
	check(st2 === 400 && /ingress_expiry/.test(text), 'replica: an expired request is refused (400)');
	c = content({ sender: Buffer.alloc(29, 7) });
	[st2, text] = await post(path, { content: c, sender_pubkey: der, sender_sig: sign(c, key) });
	check(st2 === 400 && /sender/.test(text), 'replica: a sender that is not its key\'s is refused (400)');
	c = content({ arg: crypto.randomBytes(2 * 1024 * 1024) });
	[st2] = await post(path, { content: c, sender_pubkey: der, sender_sig: sign(c, key) });
	check(st2 === 413, 'replica: a message over 2 MiB is refused (413)');
}

(async () => {
	await proveCore();
	await proveRefusals();
	await proveAssets();
	console.log('all proofs passed');
})().catch(e => {
	console.log('FAIL ' + (e && e.stack));
	process.exit(1);
});
