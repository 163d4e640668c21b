import { createExpressEndpoints, initServer } from '@ts-rest/express';
import cors from 'cors';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { contract } from '../contract';
import type { Store } from '../db/open-database';
import { authRouter } from './auth/auth.router';
import { AuthService } from './auth/auth.service';
import { authenticate } from './auth/authenticate';
import { LoginThrottle } from './auth/login-throttle';
import { BODY_LIMIT, errorHandler, notFoundHandler } from './http/error-handler';
import { methodNotAllowed } from './http/method-not-allowed';
import { requestLogging } from './http/request-logging';
import { docsRouter } from './openapi/docs';
import { projectsRouter } from './projects/projects.router';
import { ProjectsService } from './projects/projects.service';
import { tagsRouter } from './tags/tags.router';
import { TagsService } from './tags/tags.service';

export interface AppDependencies {
  store: Store;
  logger: Logger;
  /** RATE_LIMITS=off turns every request-rate limit off (load tests). */
  rateLimits: boolean;
  corsOrigins?: string[];
}

export interface Services {
  auth: AuthService;
  projects: ProjectsService;
  tags: TagsService;
}

export function createServices({ store, rateLimits }: AppDependencies): Services {
  return {
    auth: new AuthService(store, new LoginThrottle(rateLimits)),
    projects: new ProjectsService(store),
    tags: new TagsService(store),
  };
}

/** The HTTP app: no port, no process concerns, so tests drive it with supertest. */
export function createApp(deps: AppDependencies, services: Services = createServices(deps)): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogging(deps.logger));
  if (deps.corsOrigins?.length) app.use(cors({ origin: deps.corsOrigins, exposedHeaders: ['X-Request-Id', 'Link', 'Retry-After'] }));
  app.use(express.json({ limit: BODY_LIMIT }));
  app.use(docsRouter());

  const s = initServer();
  createExpressEndpoints(
    contract,
    s.router(contract, {
      auth: authRouter(services.auth),
      projects: projectsRouter(services.projects),
      tags: tagsRouter(services.tags),
    }),
    app,
    {
      globalMiddleware: [authenticate(services.auth)],
      responseValidation: true,
      // Validation errors go to errorHandler with every other error.
      requestValidationErrorHandler: (error, _req, _res, next) => next(error),
    },
  );

  app.use(methodNotAllowed(contract));
  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
