#!/usr/bin/env node
'use strict';
/*
 * s3rver with atomic object writes, as S3 has them.  s3rver 3's filesystem
 * store answers a PUT when the request body has been read, not when the
 * object file is written (it resolves on the hashing stream's 'finish',
 * before the file stream's), and writes in place: a HEAD or GET right after
 * a PUT of a key that existed may find the file truncated to 0 bytes.  The
 * tests caught it as conf_put_idempotent seeing size 0 under load.  Here an
 * object and its metadata are written to temporary names in the same
 * folder and renamed over the real ones once written; the reply waits for
 * that.  Temporary names do not end in "._S3rver_object", so listings
 * skip them.  A GET or HEAD reads the size and metadata and opens the
 * object under a lock of its key that a PUT's rename and metadata also
 * take, so it never pairs one version's length with another's bytes (an
 * open descriptor keeps reading the version it opened).  Everything else
 * is s3rver's own command line.
 */
const crypto = require('crypto');
const fs = require('fs-extra');
const path = require('path');
const { pick, pickBy } = require('lodash');

const base = path.join(__dirname, '..', 'node_modules', 's3rver');
const FilesystemStore = require(path.join(base, 'lib', 'stores', 'filesystem'));
const S3Object = require(path.join(base, 'lib', 'models', 'object'));

const locks = new Map();

/* Runs FN with the lock of (BUCKET, KEY) held: one holder at a time. */
async function withKey(bucket, key, fn) {
  const id = bucket + '/' + key;
  const before = locks.get(id) || Promise.resolve();
  let release;
  const mine = new Promise((resolve) => { release = resolve; });
  const chain = before.then(() => mine);
  locks.set(id, chain);
  await before;
  try {
    return await fn();
  } finally {
    release();
    if (locks.get(id) === chain) locks.delete(id);
  }
}

function tempName(file) {
  return file + '.tmp-' + process.pid + '-' + crypto.randomBytes(6).toString('hex');
}

async function writeAtomic(file, data) {
  const tmp = tempName(file);
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, file);
}

FilesystemStore.prototype.putMetadata = async function (bucket, key, metadata, md5) {
  const json = {
    ...pick(metadata, S3Object.ALLOWED_METADATA),
    ...pickBy(metadata, (value, k) => k.startsWith('x-amz-meta-')),
  };
  if (md5) await writeAtomic(this.getResourcePath(bucket, key, 'object.md5'), md5);
  await writeAtomic(this.getResourcePath(bucket, key, 'metadata.json'), JSON.stringify(json, null, 2));
};

FilesystemStore.prototype.putObject = async function (object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  const tmp = tempName(objectPath);
  await fs.mkdirp(path.dirname(objectPath));
  const md5 = crypto.createHash('md5');
  let size = 0;
  try {
    await new Promise((resolve, reject) => {
      const out = fs.createWriteStream(tmp);
      out.on('error', reject).on('close', resolve);
      if (Buffer.isBuffer(object.content)) {
        md5.update(object.content);
        size = object.content.length;
        out.end(object.content);
      } else {
        object.content.on('error', (e) => { out.destroy(); reject(e); });
        object.content.on('data', (chunk) => { md5.update(chunk); size += chunk.length; });
        object.content.pipe(out);
      }
    });
  } catch (e) {
    await fs.remove(tmp).catch(() => {});
    throw e;
  }
  const digest = md5.digest('hex');
  await withKey(object.bucket, object.key, async () => {
    await fs.rename(tmp, objectPath);
    await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  });
  return { size, md5: digest };
};

const getObject = FilesystemStore.prototype.getObject;
FilesystemStore.prototype.getObject = function (bucket, key, options) {
  /* s3rver's own reads the metadata, then opens the file by name once
   * it has a stream: both inside the lock */
  return withKey(bucket, key, () => getObject.call(this, bucket, key, options));
};

const deleteObject = FilesystemStore.prototype.deleteObject;
FilesystemStore.prototype.deleteObject = function (bucket, key) {
  return withKey(bucket, key, () => deleteObject.call(this, bucket, key));
};

require(path.join(base, 'bin', 's3rver.js'));
