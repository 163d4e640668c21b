import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import { currentUser } from '../auth/authenticate';
import { pagedAnswer } from '../pagination/link-header';
import { serializeMember, serializeProject } from './project.serializer';
import type { ProjectsService } from './projects.service';

const s = initServer();

export const projectsRouter = (projects: ProjectsService) =>
  s.router(contract.projects, {
    list: async ({ query, req, res }) => pagedAnswer(await projects.list(currentUser(req).id, query), serializeProject, req, res),
    create: async ({ body, req }) => ({
      status: 201,
      body: serializeProject(await projects.create(currentUser(req).id, body)),
    }),
    get: async ({ params, req }) => ({
      status: 200,
      body: serializeProject(await projects.get(currentUser(req).id, params.id)),
    }),
    update: async ({ params, body, req }) => ({
      status: 200,
      body: serializeProject(await projects.update(currentUser(req).id, params.id, body)),
    }),
    remove: async ({ params, req }) => {
      await projects.remove(currentUser(req).id, params.id);
      return { status: 204, body: undefined };
    },
    listMembers: async ({ params, query, req, res }) =>
      pagedAnswer(await projects.listMembers(currentUser(req).id, params.id, query), serializeMember, req, res),
    removeMember: async ({ params, req }) => {
      await projects.removeMember(currentUser(req).id, params.id, params.userId);
      return { status: 204, body: undefined };
    },
  });
