// `npm run openapi`: writes openapi.json from the contract. test/openapi.test.ts fails when it is stale.
import { writeFileSync } from 'node:fs';
import { renderOpenApiDocument } from '../server/openapi/openapi-document';

writeFileSync(new URL('../openapi.json', import.meta.url), renderOpenApiDocument());
console.log('openapi.json written');
