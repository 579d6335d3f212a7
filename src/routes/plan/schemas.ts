/** Schemas of `POST /v1/plan` (SPEC §3). */
export { documentBody, formatQuery, planSchema } from '../pipelines/schemas.js';
