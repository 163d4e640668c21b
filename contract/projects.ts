import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import { authenticatedErrors, Description, errors, IntId, PAGED_ARRAY, PageQuery, Timestamp, Title } from './common';

const c = initContract();

/** A page's cursor carries the last member's username: 150 letters take up to 450 bytes of UTF-8, 611 in base64url. */
const MEMBER_CURSOR_LENGTH = 1000;

export const Project = z.object({
  id: z.number().int(),
  title: z.string(),
  description: z.string(),
  owner_id: z.number().int(),
  created_at: Timestamp,
});

export const ProjectMember = z.object({
  id: z.number().int(),
  username: z.string(),
  first_name: z.string(),
  last_name: z.string(),
  is_owner: z.boolean(),
});

const ProjectBody = z.object({ title: Title, description: Description.default('') }).strict();
const ProjectPatch = z.object({ title: Title, description: Description }).partial().strict();
const ProjectParams = z.object({ id: IntId });

export const projectsContract = c.router(
  {
    list: {
      method: 'GET',
      path: '/api/projects/',
      summary: 'Projects the user is a member of, oldest first',
      description: PAGED_ARRAY,
      query: z.object(PageQuery(100, 100)).strict(),
      responses: { 200: z.array(Project), ...errors.badRequest },
    },
    create: {
      method: 'POST',
      path: '/api/projects/',
      summary: 'Create a project; the creator becomes its owner and first member',
      body: ProjectBody,
      responses: { 201: Project, ...errors.badRequest },
    },
    get: {
      method: 'GET',
      path: '/api/projects/:id/',
      summary: 'One project (members only)',
      pathParams: ProjectParams,
      responses: { 200: Project, ...errors.notFound },
    },
    update: {
      method: 'PATCH',
      path: '/api/projects/:id/',
      summary: 'Update a project (owner only)',
      pathParams: ProjectParams,
      body: ProjectPatch,
      responses: { 200: Project, ...errors.badRequest, ...errors.forbidden, ...errors.notFound },
    },
    remove: {
      method: 'DELETE',
      path: '/api/projects/:id/',
      summary: 'Delete a project (owner only)',
      pathParams: ProjectParams,
      body: c.noBody(),
      responses: { 204: c.noBody(), ...errors.forbidden, ...errors.notFound },
    },
    listMembers: {
      method: 'GET',
      path: '/api/projects/:id/members/',
      summary: 'Members of a project (members only): the owner first, then by username. Members join by invitation (/api/projects/{id}/invitations/)',
      description: PAGED_ARRAY,
      pathParams: ProjectParams,
      query: z.object(PageQuery(100, 100, MEMBER_CURSOR_LENGTH)).strict(),
      responses: { 200: z.array(ProjectMember), ...errors.badRequest, ...errors.notFound },
    },
    removeMember: {
      method: 'DELETE',
      path: '/api/projects/:id/members/:userId/',
      summary: 'Remove a member (the owner), or leave (a member removing themself); the owner can do neither to themself',
      pathParams: z.object({ id: IntId, userId: IntId }),
      body: c.noBody(),
      responses: { 204: c.noBody(), ...errors.badRequest, ...errors.forbidden, ...errors.notFound },
    },
  },
  { commonResponses: authenticatedErrors },
);
