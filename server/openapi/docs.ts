import { Router, type Express } from 'express';
import swaggerUi from 'swagger-ui-express';
import { docsSecurityHeaders } from '../http/security-headers';
import { buildOpenApiDocument } from './openapi-document';

/**
 * GET /openapi.json and an interactive reference at GET /docs. Mounted on their paths, not as a
 * router for every path: express enters a router mounted at / for each request that passes it.
 */
export function serveDocs(app: Express): void {
  const document = buildOpenApiDocument();
  app.get('/openapi.json', (_req, res) => res.json(document));
  app.use('/docs', Router().use(docsSecurityHeaders(), swaggerUi.serve, swaggerUi.setup(document, { customSiteTitle: 'Punchclock API' })));
}
