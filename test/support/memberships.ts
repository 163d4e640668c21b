import { expect } from 'vitest';
import type supertest from 'supertest';
import type { TestUser } from './api';

/**
 * Makes `member` a member of the project the way a client must: its owner invites them by username,
 * they find the invitation in their list and accept it. Answers the accepted project.
 */
export async function joinProject(http: supertest.Agent, project: { id: number }, member: TestUser, owner: TestUser) {
  await http.post(`/api/projects/${project.id}/invitations/`).set(owner.auth).send({ username: member.username }).expect(202);
  const invitation = await pendingInvitation(http, project, member);
  expect(invitation, `an invitation to project ${project.id} for ${member.username}`).toBeDefined();
  return (await http.post(`/api/invitations/${invitation!.id}/accept/`).set(member.auth).expect(200)).body;
}

/** The user's pending invitation to the project, if any (the first page holds it in these tests). */
export async function pendingInvitation(http: supertest.Agent, project: { id: number }, user: TestUser): Promise<{ id: number } | undefined> {
  const mine: Array<{ id: number; project: { id: number } }> = (await http.get('/api/invitations/').set(user.auth).expect(200)).body;
  return mine.find((invitation) => invitation.project.id === project.id);
}
