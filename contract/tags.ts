import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import { authenticatedErrors, errors, IntId, PAGED_ARRAY, PageQuery } from './common';

const c = initContract();

export const Tag = z.object({ id: z.number().int(), title: z.string() });

const TagTitle = z.string().trim().min(1).max(100);
const TagParams = z.object({ id: IntId });

export const tagsContract = c.router(
  {
    list: {
      method: 'GET',
      path: '/api/tags/',
      summary: "The user's tags, by title",
      description: PAGED_ARRAY,
      query: z.object(PageQuery(100, 100)).strict(),
      responses: { 200: z.array(Tag), ...errors.badRequest },
    },
    create: {
      method: 'POST',
      path: '/api/tags/',
      summary: 'Create a tag (titles are unique per user)',
      body: z.object({ title: TagTitle }).strict(),
      responses: { 201: Tag, ...errors.badRequest },
    },
    rename: {
      method: 'PATCH',
      path: '/api/tags/:id/',
      summary: 'Rename a tag',
      pathParams: TagParams,
      body: z.object({ title: TagTitle }).strict(),
      responses: { 200: Tag, ...errors.badRequest, ...errors.notFound },
    },
    remove: {
      method: 'DELETE',
      path: '/api/tags/:id/',
      summary: 'Delete a tag',
      pathParams: TagParams,
      body: c.noBody(),
      responses: { 204: c.noBody(), ...errors.notFound },
    },
  },
  { commonResponses: authenticatedErrors },
);
