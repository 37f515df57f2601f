// Signs a run's transactions on every core before the clock starts: a goodness run signs
// hundreds of thousands of transactions, and Ed25519 signing is most of that work. The main
// thread canonicalises each transaction (JCS) and assembles the envelope; worker threads sign.
// The workers are plain JavaScript on node:crypto, given as source (as the node's verifier
// does), so they load the same way under tsx and from compiled files.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Ed25519Signer } from '../../consensus/crypto/ed25519.ts';
import { jcs, to0x, utf8 } from '../../consensus/crypto/encoding.ts';
import { txHash, type TxFields } from '../../state/tx.ts';
import type { PreparedTx } from './driver.ts';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPrivateKey, sign } = require('node:crypto');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const keys = new Map();
parentPort.on('message', ({ id, secretKeys, messages }) => {
  const sigs = new Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    let key = keys.get(secretKeys[i]);
    if (!key) {
      key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(secretKeys[i], 'hex')]), format: 'der', type: 'pkcs8' });
      keys.set(secretKeys[i], key);
    }
    sigs[i] = sign(null, Buffer.from(messages[i], 'utf8'), key).toString('hex');
  }
  parentPort.postMessage({ id, sigs });
});
`;

const CHUNK = 1000;

/** An Ed25519 key pair as hex: the account id is the public key (tx.md). */
export interface AccountKeys {
  secretKey: string;
  publicKey: string;
}

export interface TxToSign {
  keys: AccountKeys;
  fields: Omit<TxFields, 'from'>;
}

/**
 * Signs every transaction; the result is in the same order. The envelope is built as tx.md
 * fixes it: JCS({sig, tx}) is `{"sig":"<hex>","tx":` + JCS(tx) + `}`, because "sig" sorts
 * before "tx" and hex needs no escaping, so JCS(tx) is computed once and is also what is signed.
 */
export async function signAll(txs: TxToSign[], threads = Math.max(1, availableParallelism())): Promise<PreparedTx[]> {
  const bodies = txs.map((t) => jcs({ ...t.fields, from: t.keys.publicKey }));
  const sigs: string[] = new Array(txs.length);
  if (txs.length < CHUNK) {
    // Too few to pay for starting threads.
    const signers = new Map<string, Ed25519Signer>();
    txs.forEach((t, i) => {
      let signer = signers.get(t.keys.secretKey);
      if (!signer) signers.set(t.keys.secretKey, (signer = new Ed25519Signer(t.keys.secretKey)));
      sigs[i] = signer.sign(utf8(bodies[i]!));
    });
    return envelopes(bodies, sigs);
  }
  const workers = Array.from({ length: Math.min(threads, Math.ceil(txs.length / CHUNK)) }, () => new Worker(WORKER_SOURCE, { eval: true }));
  try {
    let next = 0;
    await Promise.all(
      workers.map(async (worker) => {
        while (next < txs.length) {
          const start = next;
          next = Math.min(txs.length, next + CHUNK);
          const end = next;
          const answer = await new Promise<{ sigs: string[] }>((resolve, reject) => {
            worker.once('message', resolve);
            worker.once('error', reject);
            worker.postMessage({ id: start, secretKeys: txs.slice(start, end).map((t) => t.keys.secretKey), messages: bodies.slice(start, end) });
          });
          worker.removeAllListeners('error');
          for (let i = start; i < end; i++) sigs[i] = answer.sigs[i - start]!;
        }
      }),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return envelopes(bodies, sigs);
}

function envelopes(bodies: string[], sigs: string[]): PreparedTx[] {
  return bodies.map((body, i) => {
    const bytes = utf8(`{"sig":"${sigs[i]}","tx":${body}}`);
    return { raw: to0x(bytes), hash: txHash(bytes) };
  });
}
