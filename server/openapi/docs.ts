import { Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import { docsSecurityHeaders } from '../http/security-headers';
import { buildOpenApiDocument } from './openapi-document';

/** GET /openapi.json and an interactive reference at GET /docs. */
export function docsRouter(): Router {
  const document = buildOpenApiDocument();
  const router = Router();
  router.get('/openapi.json', (_req, res) => res.json(document));
  router.use('/docs', docsSecurityHeaders(), swaggerUi.serve, swaggerUi.setup(document, { customSiteTitle: 'Punchclock API' }));
  return router;
}
