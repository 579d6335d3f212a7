/** Schemas of `GET /v1/nodes` (docs/rest.md). */
import { z } from 'zod';

export const nodeCatalogSchema = z.object({
  items: z.array(
    z.object({
      type: z.string(),
      description: z.string(),
      params: z.record(z.string(), z.unknown()).describe('JSON Schema (draft 2020-12) of the params'),
      emits_events: z.boolean(),
      events: z.array(z.string()).describe('event names the node emits'),
    }),
  ),
});
