/** Schemas of `POST /v1/plan` (docs/rest.md). */
export { documentBody, formatQuery, planSchema } from '../pipelines/schemas.js';
