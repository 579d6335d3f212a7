/** `npm run openapi`: writes openapi/openapi.json from the route schemas. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { generateOpenapi, OPENAPI_PATH } from './openapi.js';

mkdirSync(new URL('.', OPENAPI_PATH), { recursive: true });
writeFileSync(OPENAPI_PATH, await generateOpenapi());
console.log(`wrote ${OPENAPI_PATH.pathname}`);
