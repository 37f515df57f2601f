// consensus/chain/merkle.ts against RFC 6962 as the Certificate Transparency implementations
// test it: the 8-leaf reference tree (leaf inputs, tree heads for every size, known audit
// paths) of the Go and C++ CT code, then every proof of every tree of 1..20 leaves, and the
// tamperings the CT verifier tests try, each of which must fail.
import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { leafHash, merkleProof, merkleRoot, merkleRootFromProof, nodeHash, verifyMerkleProof } from '../consensus/chain/merkle.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(unhex);

/** Tree heads of the first n reference leaves, n = 0..8. */
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** Audit paths of the CT verifier tests; `index` is 0-based here (the Go vectors count from 1). */
const AUDIT_PATHS = [
  { index: 0, size: 1, path: [] as string[] },
  {
    index: 0,
    size: 8,
    path: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    path: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, path: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    path: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

const SOME_HASH = unhex('abacaba000000000000000000000000000000000000000000060061e00123456');

test('leaf and node hashes carry the RFC 6962 domain bytes 0x00 and 0x01', () => {
  const sha = (...parts: Uint8Array[]) => {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return hex(h.digest());
  };
  assert.is(hex(leafHash(unhex('0102'))), sha(unhex('000102')));
  assert.is(hex(nodeHash(unhex('aa'), unhex('bb'))), sha(unhex('01aabb')));
});

test('tree heads of the reference tree for every size 0..8', () => {
  for (let n = 0; n <= LEAVES.length; n++) assert.is(hex(merkleRoot(LEAVES.slice(0, n))), ROOTS[n], `size ${n}`);
});

test('the published audit paths are produced and verify', () => {
  for (const { index, size, path } of AUDIT_PATHS) {
    const leaves = LEAVES.slice(0, size);
    assert.equal(merkleProof(leaves, index).map(hex), path, `leaf ${index} of ${size}`);
    assert.ok(verifyMerkleProof(unhex(ROOTS[size]!), leaves[index]!, index, size, path.map(unhex)), `leaf ${index} of ${size}`);
  }
});

/** The corruptions of the CT verifier tests (corruptInclusionProof); none may verify. */
function tamperings(index: number, size: number, path: Uint8Array[], root: Uint8Array, data: Uint8Array) {
  const flipped = (i: number) => path.map((p, j) => (j === i ? Uint8Array.from(p, (b, k) => (k === 0 ? b ^ 8 : b)) : p));
  const cases: { name: string; index: number; size: number; path: Uint8Array[]; root: Uint8Array; data: Uint8Array }[] = [
    { name: 'index - 1', index: index - 1, size, path, root, data },
    { name: 'index + 1', index: index + 1, size, path, root, data },
    { name: 'index ^ 2', index: index ^ 2, size, path, root, data },
    { name: 'size * 2', index, size: size * 2, path, root, data },
    { name: 'size / 2', index, size: Math.floor(size / 2), path, root, data },
    { name: 'wrong leaf', index, size, path, root, data: new TextEncoder().encode('WrongLeaf') },
    { name: 'empty root', index, size, path, root: unhex(ROOTS[0]!), data },
    { name: 'random root', index, size, path, root: SOME_HASH, data },
    { name: 'trailing empty', index, size, path: [...path, new Uint8Array(0)], root, data },
    { name: 'trailing root', index, size, path: [...path, root], root, data },
    { name: 'preceding empty', index, size, path: [new Uint8Array(0), ...path], root, data },
    { name: 'preceding root', index, size, path: [root, ...path], root, data },
  ];
  for (let i = 0; i < path.length; i++) cases.push({ name: `flipped bit in path[${i}]`, index, size, path: flipped(i), root, data });
  if (path.length > 0) cases.push({ name: 'removed component', index, size, path: path.slice(0, -1), root, data });
  if (path.length > 1) cases.push({ name: 'inserted component', index, size, path: [path[0]!, SOME_HASH, ...path.slice(1)], root, data });
  return cases;
}

test('every proof of every tree of 1..20 leaves verifies, and every tampering fails', () => {
  const all = Array.from({ length: 20 }, (_, i) => unhex((i * 37 + 11).toString(16).padStart(4, '0') + 'ab'.repeat(i % 5)));
  let checked = 0;
  for (let size = 1; size <= 20; size++) {
    const leaves = all.slice(0, size);
    const root = merkleRoot(leaves);
    for (let index = 0; index < size; index++) {
      const path = merkleProof(leaves, index);
      assert.ok(verifyMerkleProof(root, leaves[index]!, index, size, path), `leaf ${index} of ${size}`);
      assert.is(hex(merkleRootFromProof(leaves[index]!, index, size, path)!), hex(root));
      for (const t of tamperings(index, size, path, root, leaves[index]!)) {
        // Some probes coincide with the honest proof (index - 1 at 0 is -1, size/2 at size 1 is 0 ...): all must fail.
        assert.not.ok(verifyMerkleProof(t.root, t.data, t.index, t.size, t.path), `${t.name}: leaf ${index} of ${size}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 1000);
});

test('proofs out of range: no path for a leaf that does not exist', () => {
  assert.throws(() => merkleProof(LEAVES, 8));
  assert.throws(() => merkleProof(LEAVES, -1));
  assert.throws(() => merkleProof([], 0));
  assert.is(merkleRootFromProof(LEAVES[0]!, 0, 0, []), null);
  assert.is(merkleRootFromProof(LEAVES[0]!, 1, 1, []), null);
  assert.not.ok(verifyMerkleProof(unhex(ROOTS[1]!), SOME_HASH, 0, 1, []));
});

test.run();
