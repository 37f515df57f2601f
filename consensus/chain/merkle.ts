// RFC 6962 Merkle trees over 32-byte hashes (chain.md): leaf = H(0x00 || data),
// node = H(0x01 || left || right), an odd last node carried up unchanged, empty root = H("").
import { hash } from 'node:crypto';
import { bytesEqual, sha256 } from '../crypto/encoding.ts';

// Trees are built once per block over thousands of leaves: hashing from reused buffers
// instead of concatenating saves an allocation per hash.
const leafScratch = Buffer.alloc(1 + 32);
const nodeScratch = Buffer.alloc(1 + 64);
nodeScratch[0] = 1;

export function leafHash(data: Uint8Array): Uint8Array {
  if (data.length !== 32) return hash('sha256', Buffer.concat([leafScratch.subarray(0, 1), data]), 'buffer');
  leafScratch.set(data, 1);
  return hash('sha256', leafScratch, 'buffer');
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== 32 || right.length !== 32) return hash('sha256', Buffer.concat([nodeScratch.subarray(0, 1), left, right]), 'buffer');
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 33);
  return hash('sha256', nodeScratch, 'buffer');
}

/** Largest power of two strictly less than n (n >= 2): RFC 6962's split point. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function subtreeRoot(leaves: Uint8Array[], from: number, to: number): Uint8Array {
  const n = to - from;
  if (n === 1) return leafHash(leaves[from]!);
  const k = split(n);
  return nodeHash(subtreeRoot(leaves, from, from + k), subtreeRoot(leaves, from + k, to));
}

export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256();
  return subtreeRoot(leaves, 0, leaves.length);
}

/** RFC 6962 audit path for leaf `index`: sibling hashes from the leaf up. */
export function merkleProof(leaves: Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError('leaf index out of range');
  const path: Uint8Array[] = [];
  const walk = (from: number, to: number, m: number): void => {
    const n = to - from;
    if (n === 1) return;
    const k = split(n);
    if (m < k) {
      walk(from, from + k, m);
      path.push(subtreeRoot(leaves, from + k, to));
    } else {
      walk(from + k, to, m - k);
      path.push(subtreeRoot(leaves, from, from + k));
    }
  };
  walk(0, leaves.length, index);
  return path;
}

/** Recomputes the root from a leaf's data and its audit path (RFC 9162 section 2.1.3.2). */
export function merkleRootFromProof(data: Uint8Array, index: number, size: number, path: Uint8Array[]): Uint8Array | null {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leafHash(data);
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

export function verifyMerkleProof(root: Uint8Array, data: Uint8Array, index: number, size: number, path: Uint8Array[]): boolean {
  const computed = merkleRootFromProof(data, index, size, path);
  return computed !== null && bytesEqual(computed, root);
}
