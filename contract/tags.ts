import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import { authenticatedErrors, errors, IntId, PAGED_ARRAY, PageQuery } from './common';

const c = initContract();

export const Tag = z.object({ id: z.number().int(), title: z.string() });

const TagTitle = z.string().trim().min(1).max(100);
/**
 * A page's cursor carries the last tag's title: 100 characters take up to 600 bytes as JSON
 * (`\u0001`), 832 in base64url with the id.
 */
const TAG_CURSOR_LENGTH = 1000;
const TagParams = z.object({ id: IntId });

export const tagsContract = c.router(
  {
    list: {
      method: 'GET',
      path: '/api/tags/',
      summary: "The user's tags, by title",
      description: PAGED_ARRAY,
      query: z.object(PageQuery(100, 100, TAG_CURSOR_LENGTH)).strict(),
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
