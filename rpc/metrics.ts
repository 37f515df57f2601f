// Request counts and durations by method and outcome, recorded into the node's prom-client
// registry when it gives one. Labels are bounded: unknown method names are all "unknown".
import { Counter, Histogram, type Registry } from 'prom-client';

export interface RpcMetrics {
  observe(method: string, outcome: string, seconds: number): void;
}

const REQUESTS = 'goodness_rpc_requests_total';
const DURATION = 'goodness_rpc_request_duration_seconds';

export function createRpcMetrics(registry: Registry): RpcMetrics {
  // Two servers on one registry (tests, restarts) share the metrics instead of failing to register.
  const requests =
    (registry.getSingleMetric(REQUESTS) as Counter<'method' | 'outcome'> | undefined) ??
    new Counter({ name: REQUESTS, help: 'JSON-RPC calls by method and outcome (ok, or the error code)', labelNames: ['method', 'outcome'], registers: [registry] });
  const duration =
    (registry.getSingleMetric(DURATION) as Histogram<'method'> | undefined) ??
    new Histogram({
      name: DURATION,
      help: 'JSON-RPC call duration by method',
      labelNames: ['method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  return {
    observe(method, outcome, seconds) {
      requests.inc({ method, outcome });
      duration.observe({ method }, seconds);
    },
  };
}
