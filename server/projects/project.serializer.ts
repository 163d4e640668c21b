import type { UserRow } from '../auth/auth.service';
import type { ProjectRow } from './projects.service';

export const serializeProject = (project: ProjectRow) => ({
  id: project.id,
  title: project.title,
  description: project.description,
  owner_id: project.ownerId,
  created_at: project.createdAt.toISOString(),
});

export const serializeMember = ({ user, isOwner }: { user: UserRow; isOwner: boolean }) => ({
  id: user.id,
  username: user.username,
  first_name: user.firstName,
  last_name: user.lastName,
  is_owner: isOwner,
});
