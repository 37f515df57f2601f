// Helpers for tests and benchmarks of the p2p layer: real libp2p nodes on loopback with
// ephemeral ports, and polling waits. Not used by the node itself.
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { createP2PNode, type P2PNode, type P2PNodeOptions } from './node.ts';
import type { ValidatorPeer } from './types.ts';

export interface LocalCluster {
  nodes: P2PNode[];
  keys: PrivateKey[];
  /** the validator set with each node's actual listen address */
  validators: ValidatorPeer[];
  stop(): Promise<void>;
}

export async function generateKeys(n: number): Promise<PrivateKey[]> {
  return Promise.all(Array.from({ length: n }, () => generateKeyPair('Ed25519')));
}

export function firstTcpAddress(node: P2PNode): string {
  const addr = node.listenAddresses().find((a) => a.includes('/tcp/'));
  if (!addr) throw new Error(`node ${node.peerId} listens on no TCP address`);
  return addr;
}

/**
 * Starts n validators on 127.0.0.1 with ports chosen by the OS, then gives each the full
 * validator set with the real addresses (so setValidators is exercised too).
 */
export async function startLocalCluster(n: number, options: Partial<P2PNodeOptions> = {}, keys?: PrivateKey[]): Promise<LocalCluster> {
  const ks = keys ?? (await generateKeys(n));
  const bare: ValidatorPeer[] = ks.map((k, index) => ({ index, peerId: peerIdFromPrivateKey(k).toString() }));
  const nodes: P2PNode[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
  };
  try {
    for (const privateKey of ks) {
      nodes.push(await createP2PNode({ listen: ['/ip4/127.0.0.1/tcp/0'], ...options, privateKey, validators: bare }));
    }
    await Promise.all(nodes.map((node) => node.start()));
    const validators = bare.map((v, i) => ({ ...v, multiaddr: firstTcpAddress(nodes[i]!) }));
    for (const node of nodes) node.setValidators(validators);
    return { nodes, keys: ks, validators, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves once every node has every other validator connected. */
export function waitFullMesh(nodes: P2PNode[], timeoutMs = 10_000): Promise<void> {
  return waitFor(() => nodes.every((node) => node.peers().every((p) => p.connected)), timeoutMs, 'a full mesh');
}
