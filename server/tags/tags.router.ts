import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import { currentUser } from '../auth/authenticate';
import { pagedAnswer } from '../pagination/link-header';
import { serializeTag } from './tag.serializer';
import type { TagsService } from './tags.service';

const s = initServer();

export const tagsRouter = (tags: TagsService) =>
  s.router(contract.tags, {
    list: async ({ query, req, res }) => pagedAnswer(await tags.list(currentUser(req).id, query), serializeTag, req, res),
    create: async ({ body, req }) => ({
      status: 201,
      body: serializeTag(await tags.create(currentUser(req).id, body.title)),
    }),
    rename: async ({ params, body, req }) => ({
      status: 200,
      body: serializeTag(await tags.rename(currentUser(req).id, params.id, body.title)),
    }),
    remove: async ({ params, req }) => {
      await tags.remove(currentUser(req).id, params.id);
      return { status: 204, body: undefined };
    },
  });
